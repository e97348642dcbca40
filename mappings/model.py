"""The shape of a mapping file, validated once at load time.

Sections (see mappings/default.yaml for every key with a comment):
`source` (Salesforce fields feeding deal attributes), `routing`, `invoice`, `customer`,
`products`, `terms`, `tax`, `currencies`, `deals_without_products`, `validation`,
`writeback`. Value specs (`billsync.mappings.values`) are parsed here with the function registry
passed as validation context, so an unknown path or transform fails at load time.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from billsync.mappings.transforms import FunctionRegistry
from billsync.mappings.values import ValueSpec, parse_value_spec

# A SOQL field path relative to the Opportunity: identifiers joined by dots
# (`Billing_Platform__c`, `Account.Billing_Email__c`, `Bill_To__r.Email`).
SALESFORCE_FIELD = r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*){0,5}$"


def _value(line_level: bool) -> Any:
    def parse(raw: Any, info: ValidationInfo) -> ValueSpec:
        if isinstance(raw, ValueSpec):
            return raw
        functions = (info.context or {}).get("functions") or FunctionRegistry.discover()
        return parse_value_spec(raw, functions, line_level=line_level)

    return BeforeValidator(parse)


DealValue = Annotated[ValueSpec, _value(line_level=False)]
LineValue = Annotated[ValueSpec, _value(line_level=True)]
SalesforceField = Annotated[str, Field(pattern=SALESFORCE_FIELD)]
OpportunityField = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
MatchKey = Literal["name", "email"]
ItemKey = Literal["sku", "name"]
DEFAULT_MATCH_BY: tuple[MatchKey, ...] = ("name", "email")
DEFAULT_RESOLVE_BY: tuple[ItemKey, ...] = ("sku", "name")
CurrencyList = list[Annotated[str, Field(pattern=r"^[A-Z]{3}$")]]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class SourceSpec(_Section):
    """Salesforce fields (on Opportunity, or `Account.<field>`) for deal attributes."""

    target_hint: SalesforceField | None = "Billing_Platform__c"
    po_number: SalesforceField | None = None
    terms: SalesforceField | None = None
    billing_email: SalesforceField | None = "Account.Billing_Email__c"
    account_number: SalesforceField | None = "Account.AccountNumber"
    contact_name: SalesforceField | None = None
    contact_email: SalesforceField | None = None


class RoutingSpec(_Section):
    """Which target a deal goes to, from the value of `deal.target_hint` (any case)."""

    values: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "quickbooks": ["QuickBooks", "QuickBooks Online", "QBO"],
            "stripe": ["Stripe"],
        }
    )


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


class QuickBooksProducts(_Section):
    resolve_by: list[ItemKey] = Field(default_factory=lambda: list(DEFAULT_RESOLVE_BY))
    map: dict[str, str] = Field(default_factory=dict)


class StripeProducts(_Section):
    price_lookup_key: LineValue | None = None
    map: dict[str, str] = Field(default_factory=dict)
    ad_hoc_prices: bool = False


class ProductsSpec(_Section):
    quickbooks: QuickBooksProducts = Field(default_factory=QuickBooksProducts)
    stripe: StripeProducts = Field(default_factory=StripeProducts)


class StripeTerms(_Section):
    collection_method: Literal["send_invoice", "charge_automatically"] = "send_invoice"
    days_until_due: int | None = Field(default=None, ge=0, le=3650)


class TermTargets(_Section):
    quickbooks: str | None = None
    stripe: StripeTerms | None = None


class TermsSpec(_Section):
    default: str | None = None
    values: dict[str, TermTargets] = Field(default_factory=dict)


class QuickBooksTax(_Section):
    default_code: str | None = None
    by_product: dict[str, str] = Field(default_factory=dict)


class StripeTax(_Section):
    automatic: bool = False
    default_rates: list[str] = Field(default_factory=list)
    by_product: dict[str, list[str]] = Field(default_factory=dict)


class TaxSpec(_Section):
    quickbooks: QuickBooksTax = Field(default_factory=QuickBooksTax)
    stripe: StripeTax = Field(default_factory=StripeTax)


class CurrenciesSpec(_Section):
    """Currencies each target may invoice in (`null`: any the target supports)."""

    quickbooks: CurrencyList | None = None
    stripe: CurrencyList | None = None


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
    version: Literal[1] = 1
    source: SourceSpec = Field(default_factory=SourceSpec)
    routing: RoutingSpec = Field(default_factory=RoutingSpec)
    invoice: InvoiceSpec = Field(default_factory=InvoiceSpec)
    customer: CustomerSpec = Field(default_factory=CustomerSpec)
    products: ProductsSpec = Field(default_factory=ProductsSpec)
    terms: TermsSpec = Field(default_factory=TermsSpec)
    tax: TaxSpec = Field(default_factory=TaxSpec)
    currencies: CurrenciesSpec = Field(default_factory=CurrenciesSpec)
    deals_without_products: NoProductsSpec = Field(default_factory=NoProductsSpec)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    writeback: WriteBackSpec = Field(default_factory=WriteBackSpec)
