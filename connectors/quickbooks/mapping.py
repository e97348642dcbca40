"""QuickBooks' part of the mapping file: ``products.quickbooks``, ``tax.quickbooks`` and
``terms.values.<term>.quickbooks`` (or the same under a connection's name, ``qbo_uk``).

QuickBooks bills Items, found by their Sku or Name; each line may carry a TaxCode (US
companies: ``TAX``/``NON``); payment terms are Term objects named on the invoice
(SalesTermRef), so a term must exist in the company.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from billsync.core.target_mapping import (
    Candidates,
    LineTax,
    TargetMapping,
    Term,
    UniqueReference,
    ValueOf,
)

# Invoice.DocNumber holds at most 21 characters; QuickBooks refuses a longer one
# (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice).
DOC_NUMBER_MAX = 21

ItemKey = Literal["sku", "name"]
DEFAULT_RESOLVE_BY: tuple[ItemKey, ...] = ("sku", "name")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuickBooksProducts(_Section):
    # Find the Item whose Sku, then whose Name, equals the (mapped) product code.
    resolve_by: list[ItemKey] = Field(default_factory=lambda: list(DEFAULT_RESOLVE_BY))
    map: dict[str, str] = Field(default_factory=dict)


class QuickBooksTax(_Section):
    default_code: str | None = None
    by_product: dict[str, str] = Field(default_factory=dict)


def product_candidates(products: QuickBooksProducts, code: str, value_of: ValueOf) -> Candidates:
    mapped = products.map.get(code, code)
    return tuple((key, mapped) for key in products.resolve_by)


def line_tax(tax: QuickBooksTax, code: str) -> LineTax:
    return LineTax(code=tax.by_product.get(code, tax.default_code))


def tax_references(tax: QuickBooksTax) -> list[tuple[str, str]]:
    named = [("default_code", tax.default_code)] + [
        (f"by_product.{product}", code) for product, code in tax.by_product.items()
    ]
    return [(key, code) for key, code in named if code is not None]


def term_meaning(entry: str | None, name: str) -> Term | None:
    return None if entry is None else Term(entry, must_exist=True)


def unique_reference(section: Any) -> UniqueReference | None:
    # Without the look-up before each create, a lost create answer is found again only
    # by the DocNumber the intent stored: two deals sharing one would adopt each other's
    # invoice, or a retry would create a second one.
    if section.lookup_before_create:
        return None
    return UniqueReference("lookup_before_create is false", "lookup_before_create: true")


MAPPING = TargetMapping(
    products=QuickBooksProducts,
    tax=QuickBooksTax,
    term=str,
    product_candidates=product_candidates,
    product_map=lambda products: products.map,
    line_tax=line_tax,
    tax_references=tax_references,
    term_meaning=term_meaning,
    unique_reference=unique_reference,
    doc_number_max=DOC_NUMBER_MAX,
    product_noun="item",
    tax_noun="tax code",
)
