"""The shape of a mapping file, validated once at load time.

Sections (see mappings/default.yaml for every key with a comment):
`source` (the deal source's fields feeding deal attributes), `routing`, `invoice`,
`customer`, `products`, `terms`, `tax`, `currencies`, `deals_without_products`,
`validation`, `writeback`. Value specs (`billsync.mappings.values`) are parsed here with
the function registry passed as validation context, so an unknown path or transform
fails at load time. What goes under a target's key in `products`, `tax`, `currencies`
and `terms.values.<term>` is its connector's to say (`mapping_model`).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    model_validator,
)

from billsync.mappings.targets import MappingTargets
from billsync.mappings.transforms import FunctionRegistry
from billsync.mappings.values import DEAL_PATHS, ValueSpec, parse_value_spec

# A source field path relative to the deal record (for a SOQL source: a path relative to
# the Opportunity, `Billing_Platform__c`, `Account.Billing_Email__c`, `Bill_To__r.Email`).
SOURCE_FIELD = r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*){0,5}$"


def _value(line_level: bool) -> Any:
    def parse(raw: Any, info: ValidationInfo) -> ValueSpec:
        if isinstance(raw, ValueSpec):
            return raw
        functions = (info.context or {}).get("functions") or FunctionRegistry.discover()
        return parse_value_spec(raw, functions, line_level=line_level)

    return BeforeValidator(parse)


DealValue = Annotated[ValueSpec, _value(line_level=False)]
LineValue = Annotated[ValueSpec, _value(line_level=True)]
SourceField = Annotated[str, Field(pattern=SOURCE_FIELD)]
OpportunityField = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
MatchKey = Literal["name", "email"]
DEFAULT_MATCH_BY: tuple[MatchKey, ...] = ("name", "email")
CurrencyList = list[Annotated[str, Field(pattern=r"^[A-Z]{3}$")]]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class SourceSpec(_Section):
    """The deal source's fields (on the deal, or `Account.<field>`) for deal attributes."""

    target_hint: SourceField | None = "Billing_Platform__c"
    po_number: SourceField | None = None
    terms: SourceField | None = None
    billing_email: SourceField | None = "Account.Billing_Email__c"
    account_number: SourceField | None = "Account.AccountNumber"
    contact_name: SourceField | None = None
    contact_email: SourceField | None = None


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float | Decimal) else value


Text = Annotated[str, BeforeValidator(_as_text)]


class RoutingWhen(_Section):
    """What a routing rule tests; every condition given must hold. Values compare
    without case or surrounding spaces."""

    model_config = ConfigDict(populate_by_name=True)

    hint: list[Text] | None = None
    """The routing field's value (``source.target_hint``)."""
    currency: CurrencyList | None = None
    country: list[Text] | None = None
    """The account's billing country, as the source writes it (GB, UK, United Kingdom)."""
    path: str | None = None
    in_: list[Text] | None = Field(default=None, alias="in")
    """With ``path`` (a deal, account or contact value path): the values it may have."""

    @model_validator(mode="after")
    def _complete(self) -> RoutingWhen:
        if (self.path is None) != (self.in_ is None):
            raise ValueError("path and in go together: the value path and its values")
        if self.path is not None and self.path not in DEAL_PATHS:
            raise ValueError(
                f"unknown field path '{self.path}' (paths here are deal, account or "
                "contact attributes)"
            )
        if not self.conditions():
            raise ValueError("give at least one condition: hint, currency, country or path/in")
        return self

    def conditions(self) -> list[tuple[str, list[str]]]:
        """(value path, accepted values) pairs, in the order they are tested."""
        tests = [
            ("deal.target_hint", self.hint),
            ("deal.currency", self.currency),
            ("account.billing_address.country", self.country),
            (self.path or "", self.in_),
        ]
        return [(path, list(values)) for path, values in tests if values is not None]


class RoutingRule(_Section):
    to: str
    """The connection a matching deal is billed in."""
    when: RoutingWhen


class RoutingSpec(_Section):
    """Which target connection a deal goes to: the first of ``rules`` that matches,
    else the connection whose ``values`` hold the routing field's value (any case)."""

    rules: list[RoutingRule] = Field(default_factory=list)
    values: dict[str, list[str]] = Field(default_factory=dict)


class InvoiceSpec(_Section):
    doc_number: DealValue | None = None
    memo: DealValue | None = None
    private_note: DealValue | None = None
    po_number: DealValue | None = None
    line_description: LineValue = Field(default_factory=lambda: ValueSpec(path="line.description"))
    service_date: Literal["line", "close_date", "none"] = "line"


class CustomerSpec(_Section):
    name: DealValue = Field(default_factory=lambda: ValueSpec(path="account.name"))
    email: DealValue | None = None
    match_by: list[MatchKey] = Field(default_factory=lambda: list(DEFAULT_MATCH_BY))


class TargetKeys(_Section):
    """A section keyed by connection or connector kind (``products``, ``tax``,
    ``currencies``, one term's targets): `mapping_model` gives it one field per name,
    typed by that connector's model (`billsync.core.target_mapping.TargetMapping`)."""


class TermsSpec(_Section):
    default: str | None = None
    values: dict[str, TargetKeys] = Field(default_factory=dict)


class NoProductsSpec(_Section):
    action: Literal["fail", "single_line"] = "fail"
    product_code: str | None = None


class ValidationSpec(_Section):
    amount_tolerance: Decimal = Field(default=Decimal("0.01"), ge=0)
    allow_credit_lines: bool = False
    allow_zero_total: bool = False


class WriteBackSpec(_Section):
    invoice_id: OpportunityField = "Billing_Invoice_Id__c"
    invoice_number: OpportunityField = "Billing_Invoice_Number__c"
    invoice_url: OpportunityField = "Billing_Invoice_URL__c"
    status: OpportunityField = "Billing_Status__c"
    amount_paid: OpportunityField = "Billing_Amount_Paid__c"
    balance_due: OpportunityField = "Billing_Balance_Due__c"
    last_payment_date: OpportunityField = "Billing_Last_Payment_Date__c"
    amount_refunded: OpportunityField = "Billing_Amount_Refunded__c"
    amount_credited: OpportunityField = "Billing_Amount_Credited__c"
    tax: OpportunityField = "Billing_Tax__c"
    total: OpportunityField = "Billing_Total__c"
    due_date: OpportunityField = "Billing_Due_Date__c"
    sync_error: OpportunityField = "Billing_Sync_Error__c"
    synced_at: OpportunityField = "Billing_Synced_At__c"


class MappingSpec(_Section):
    # The connectors and connections this model was made for (`mapping_model`).
    targets: ClassVar[MappingTargets] = MappingTargets({})

    version: Literal[1] = 1
    source: SourceSpec = Field(default_factory=SourceSpec)
    routing: RoutingSpec = Field(default_factory=RoutingSpec)
    invoice: InvoiceSpec = Field(default_factory=InvoiceSpec)
    customer: CustomerSpec = Field(default_factory=CustomerSpec)
    products: TargetKeys = Field(default_factory=TargetKeys)
    terms: TermsSpec = Field(default_factory=TermsSpec)
    tax: TargetKeys = Field(default_factory=TargetKeys)
    currencies: TargetKeys = Field(default_factory=TargetKeys)
    deals_without_products: NoProductsSpec = Field(default_factory=NoProductsSpec)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    writeback: WriteBackSpec = Field(default_factory=WriteBackSpec)


def mapping_model(targets: MappingTargets) -> type[MappingSpec]:
    """`MappingSpec` for these targets: ``products``, ``tax``, ``currencies`` and each
    term's entry have one optional field per connection and kind, validated by that
    connector's model; a name no connector or connection has is an unknown key."""

    def keyed(title: str, model_of: Callable[[str], Any]) -> Any:
        fields: dict[str, Any] = {}
        for name in targets.names():
            model = model_of(name)
            if model is not None:
                fields[name] = (Optional[model], None)  # noqa: UP045 - built at run time
        return create_model(title, __base__=TargetKeys, **fields)

    currencies: Any = CurrencyList
    per_term = keyed("TermTargets", lambda name: targets.model(name, "term"))
    values: Any = dict[str, per_term]  # type: ignore[valid-type]
    terms = create_model(
        "TermsSpec", __base__=TermsSpec, values=(values, Field(default_factory=dict))
    )
    sections = {
        "products": keyed("ProductsSpec", lambda name: targets.model(name, "products")),
        "tax": keyed("TaxSpec", lambda name: targets.model(name, "tax")),
        "currencies": keyed(
            "CurrenciesSpec", lambda name: currencies if targets.kind_of(name) else None
        ),
        "terms": terms,
    }
    fields: dict[str, Any] = {
        name: (model, Field(default_factory=model)) for name, model in sections.items()
    }
    model = create_model("MappingSpec", __base__=MappingSpec, **fields)
    model.targets = targets
    return model
