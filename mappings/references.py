"""Check that what a mapping names exists in the targets: items, prices, terms, taxes.

`billsync mappings check --config F` runs this against the live catalogues, so a typo
in `products.quickbooks.map` or a term QuickBooks does not have is found before a run
rejects every deal that uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from billsync.core.catalog import ProductQuery, TargetCatalog
from billsync.mappings.model import MappingSpec


@dataclass(frozen=True)
class ReferenceProblem:
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


def check_references(
    spec: MappingSpec, catalogs: Mapping[str, TargetCatalog], home_currency: str = "USD"
) -> list[ReferenceProblem]:
    problems: list[ReferenceProblem] = []
    qbo = catalogs.get("quickbooks")
    if qbo is not None:
        resolve_by = spec.products.quickbooks.resolve_by
        for code, ref in spec.products.quickbooks.map.items():
            query = ProductQuery(code, home_currency, tuple((kind, ref) for kind in resolve_by))
            _product(problems, qbo, query, f"products.quickbooks.map.{code}", "QuickBooks item")
        for name, entry in spec.terms.values.items():
            if entry.quickbooks and not qbo.term_exists(entry.quickbooks):
                problems.append(
                    ReferenceProblem(
                        f"terms.values.{name}.quickbooks",
                        f"QuickBooks has no term '{entry.quickbooks}'",
                    )
                )
        tax = spec.tax.quickbooks
        codes: dict[str, str | None] = {"tax.quickbooks.default_code": tax.default_code}
        codes.update({f"tax.quickbooks.by_product.{k}": v for k, v in tax.by_product.items()})
        for key, tax_code in codes.items():
            if tax_code is not None and not qbo.tax_code_exists(tax_code):
                problems.append(ReferenceProblem(key, f"QuickBooks has no tax code '{tax_code}'"))
    stripe = catalogs.get("stripe")
    if stripe is not None:
        for code, price in spec.products.stripe.map.items():
            query = ProductQuery(code, home_currency, (("price", price),))
            _product(problems, stripe, query, f"products.stripe.map.{code}", "Stripe price")
        tax_rates = spec.tax.stripe
        for key, rates in {
            "tax.stripe.default_rates": tax_rates.default_rates,
            **{f"tax.stripe.by_product.{k}": v for k, v in tax_rates.by_product.items()},
        }.items():
            for rate in rates:
                if not stripe.tax_code_exists(rate):
                    problems.append(ReferenceProblem(key, f"Stripe has no tax rate '{rate}'"))
    return problems


def _product(
    problems: list[ReferenceProblem],
    catalog: TargetCatalog,
    query: ProductQuery,
    key: str,
    what: str,
) -> None:
    found = catalog.resolve_product(query)
    if found is None:
        problems.append(ReferenceProblem(key, f"no {what} matches {query.describe()}"))
    elif not found.active:
        problems.append(ReferenceProblem(key, f"{what} '{found.label}' is inactive"))
