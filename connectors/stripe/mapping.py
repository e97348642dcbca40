"""Stripe's part of the mapping file: ``products.stripe``, ``tax.stripe`` and
``terms.values.<term>.stripe`` (or the same under a connection's name, ``stripe_eu``).

Stripe bills Prices, found by an explicit price id or a per-currency ``lookup_key``,
else (ad hoc) the line's own unit price on the Product whose ``metadata.product_code``
is the code. Tax is Tax Rates per line or Stripe Tax (``automatic_tax``). Stripe has no
term objects: a term is a ``collection_method`` and ``days_until_due``
(https://docs.stripe.com/api/invoices/create).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from billsync.core.target_mapping import (
    Candidates,
    LineTax,
    LineValue,
    TargetMapping,
    Term,
    ValueOf,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class StripeProducts(_Section):
    price_lookup_key: LineValue | None = None
    map: dict[str, str] = Field(default_factory=dict)
    ad_hoc_prices: bool = False


class StripeTerms(_Section):
    collection_method: Literal["send_invoice", "charge_automatically"] = "send_invoice"
    days_until_due: int | None = Field(default=None, ge=0, le=3650)


class StripeTax(_Section):
    automatic: bool = False
    default_rates: list[str] = Field(default_factory=list)
    by_product: dict[str, list[str]] = Field(default_factory=dict)


def product_candidates(products: StripeProducts, code: str, value_of: ValueOf) -> Candidates:
    explicit = products.map.get(code)
    if explicit:
        return (("price", explicit),)
    lookup = value_of(products.price_lookup_key)
    candidates: Candidates = (("lookup_key", str(lookup)),) if lookup else ()
    if products.ad_hoc_prices:
        candidates += (("product_code", code),)
    return candidates


def line_tax(tax: StripeTax, code: str) -> LineTax:
    """Rates by product, else the defaults; none with automatic tax, where Stripe
    computes it (it refuses tax rates next to automatic_tax)."""
    defaults = [] if tax.automatic else tax.default_rates
    return LineTax(rates=tuple(tax.by_product.get(code, defaults)))


def tax_references(tax: StripeTax) -> list[tuple[str, str]]:
    named = [("default_rates", rate) for rate in tax.default_rates]
    for product, rates in tax.by_product.items():
        named += [(f"by_product.{product}", rate) for rate in rates]
    return named


def term_meaning(entry: StripeTerms | None, name: str) -> Term | None:
    if entry is None:
        return None
    if entry.collection_method == "charge_automatically":
        return Term(name)
    return Term(name, days_until_due=entry.days_until_due)


MAPPING = TargetMapping(
    products=StripeProducts,
    tax=StripeTax,
    term=StripeTerms,
    product_candidates=product_candidates,
    product_map=lambda products: products.map,
    line_tax=line_tax,
    automatic_tax=lambda tax: tax.automatic,
    tax_references=tax_references,
    term_meaning=term_meaning,
    product_noun="price",
    tax_noun="tax rate",
)
