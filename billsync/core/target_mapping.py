"""A target connector's part of the mapping file: its section models and its rules.

The mapping file keeps one layout for every target: ``products.<name>``, ``tax.<name>``,
``terms.values.<term>.<name>`` and ``currencies.<name>``, where ``<name>`` is a
connection (``billing_uk``) or a connector kind (shared by every connection of that
kind). What goes under a key is the connector's to say: it declares the models
(pydantic) and the rules the planner applies, in a `TargetMapping` on its
`billsync.core.plugins.ConnectorSpec`. Rules are pure: the planner asks the target's
catalog whether what they name exists and turns every problem into a rejection.

A target without a mapping part (`GENERIC`) bills each line by its product code, adds
no tax and passes the deal's payment-terms name on as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ValidationInfo

__all__ = [
    "GENERIC",
    "VALUE_PARSER",
    "Candidates",
    "DealValue",
    "LineTax",
    "LineValue",
    "TargetMapping",
    "Term",
    "UniqueReference",
    "ValueOf",
    "connection_label",
]

# The validation-context key under which the mapping loader hands its value-spec
# parser to the connectors' models: ``parse(raw, line_level) -> value spec``.
VALUE_PARSER = "parse_value"


def _value_spec(line_level: bool) -> BeforeValidator:
    def parse(raw: Any, info: ValidationInfo) -> Any:
        parser = (info.context or {}).get(VALUE_PARSER)
        return raw if parser is None else parser(raw, line_level)

    return BeforeValidator(parse)


# A mapped value in a connector's model (``{template: "{line.product_code}-{deal.currency}"}``):
# parsed and checked by the mapping loader, opaque to the connector, which only hands it
# to the `ValueOf` its rule receives. `LineValue` may also name ``line.*`` paths.
DealValue = Annotated[Any, _value_spec(line_level=False)]
LineValue = Annotated[Any, _value_spec(line_level=True)]

# Resolves a `LineValue` for the line being planned (None when it resolves to nothing).
ValueOf = Callable[[Any], Any]

# (look-up kind, value) pairs a target's catalog tries in order (`ProductQuery`).
Candidates = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class LineTax:
    """The tax of one invoice line: a tax ``code`` and/or tax ``rates``, each of which
    the target's catalog must know (`TargetCatalog.tax_code_exists`)."""

    code: str | None = None
    rates: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return ((self.code,) if self.code is not None else ()) + self.rates


@dataclass(frozen=True)
class Term:
    """What a payment-terms entry means to a target: the term ``name`` the invoice
    carries, the ``days_until_due`` it sets, and whether the target's catalog must know
    the name (`TargetCatalog.term_exists`)."""

    name: str | None
    days_until_due: int | None = None
    must_exist: bool = False


@dataclass(frozen=True)
class UniqueReference:
    """Why a connection relies on the invoice reference (``invoice.doc_number``) being
    unique per deal, ``because`` (“lookup_before_create is false”), and the ``setting``
    that would lift it, as ``key: value`` of the connection's section
    (``lookup_before_create: true``; the caller prefixes where the section is)."""

    because: str
    setting: str


def _by_code(section: Any, code: str, value_of: ValueOf) -> Candidates:
    return (("product_code", code),)


@dataclass(frozen=True)
class TargetMapping:
    """A target connector's mapping sections and rules (`ConnectorSpec.mapping`).

    Models (None: the connector takes no such key; a key there is a mapping error):
    - ``products``: ``products.<name>``; ``tax``: ``tax.<name>`` (pydantic models whose
      defaults apply when the file has no entry); ``term``: ``terms.values.<term>.<name>``
      (any pydantic annotation: a model, or ``str`` for a term name).

    Rules, each given its section (None when the model is None):
    - ``product_candidates(products, code, value_of)``: how to find a line's product in
      the catalog; empty when there is no way. ``value_of`` resolves a `LineValue`.
    - ``product_map(products)``: the explicit product-code → reference table, which
      `billsync mappings check` verifies; None: the connector has none.
    - ``line_tax(tax, code)``: the tax of a line of product ``code``;
      ``automatic_tax(tax)``: the target computes tax itself.
    - ``tax_references(tax)``: every (key under ``tax.<name>``, code) the section names.
    - ``term_meaning(entry, name)``: what the entry of payment terms ``name`` means, or None
      when the target has no equivalent (the entry is missing or cannot be expressed).
    - ``unique_reference(section)``: given the connection's *settings* section, why it
      relies on a unique invoice reference, or None.
    - ``doc_number_max``: the longest invoice number the target accepts (None: any).
    - ``product_noun`` and ``tax_noun``: what people call them ("item", "tax rate").
    """

    products: type[BaseModel] | None = None
    tax: type[BaseModel] | None = None
    term: Any = None
    product_candidates: Callable[[Any, str, ValueOf], Candidates] = _by_code
    product_map: Callable[[Any], Mapping[str, str]] | None = None
    line_tax: Callable[[Any, str], LineTax] = lambda tax, code: LineTax()
    automatic_tax: Callable[[Any], bool] = lambda tax: False
    tax_references: Callable[[Any], Iterable[tuple[str, str]]] = lambda tax: ()
    term_meaning: Callable[[Any, str], Term | None] = lambda entry, name: Term(name)
    unique_reference: Callable[[Any], UniqueReference | None] = lambda section: None
    doc_number_max: int | None = None
    product_noun: str = "product"
    tax_noun: str = "tax code"


GENERIC = TargetMapping()


def connection_label(label: str, name: str, kind: str) -> str:
    """How people call a connection: the connector's label, and the connection's name
    when it differs from the kind ("Ledgerly (ledgerly_uk)")."""
    return label if name == kind else f"{label} ({name})"
