"""Deals, catalogs and planners for the mapping tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from billsync.core.canonical import Account, Address, Deal, DealLine
from billsync.core.catalog import ProductMatch, ProductQuery
from billsync.core.idempotency import invoice_key
from billsync.mappings.loader import LoadedMapping, load_mappings
from billsync.mappings.plan import Planner

REVISION = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@dataclass
class FakeCatalog:
    """A target catalog from plain dicts: (kind, value) -> match."""

    target: str
    products: dict[tuple[str, str], ProductMatch] = field(default_factory=dict)
    currencies: set[str] = field(default_factory=lambda: {"USD"})
    terms: set[str] = field(default_factory=lambda: {"Net 30", "Net 15", "Due on receipt"})
    tax_codes: set[str] = field(default_factory=lambda: {"TAX", "NON"})
    queries: list[ProductQuery] = field(default_factory=list)

    def resolve_product(self, query: ProductQuery) -> ProductMatch | None:
        self.queries.append(query)
        for candidate in query.candidates:
            if candidate in self.products:
                return self.products[candidate]
        return None

    def currency_problem(self, currency: str) -> str | None:
        if currency in self.currencies:
            return None
        return f"{self.target} cannot invoice in {currency}"

    def term_exists(self, name: str) -> bool:
        return name in self.terms

    def tax_code_exists(self, code: str) -> bool:
        return code in self.tax_codes


def qbo_catalog() -> FakeCatalog:
    return FakeCatalog(
        "quickbooks",
        products={
            ("sku", "PLAT-SUB"): ProductMatch("11", "Platform subscription"),
            ("sku", "SEAT"): ProductMatch("12", "Seat"),
            ("name", "Training"): ProductMatch("13", "Training"),
            ("sku", "OLD-SKU"): ProductMatch("14", "Legacy widget", active=False),
        },
    )


def stripe_catalog() -> FakeCatalog:
    return FakeCatalog(
        "stripe",
        products={
            ("lookup_key", "PLAT-SUB-USD"): ProductMatch("prod_PLAT", "Platform"),
            ("lookup_key", "PLAT-SUB-JPY"): ProductMatch("prod_PLAT", "Platform"),
            ("lookup_key", "SEAT-USD"): ProductMatch("prod_SEAT", "Seat"),
            ("product_code", "CONSULT"): ProductMatch("prod_CONS", "Consulting"),
        },
        currencies={"USD", "JPY", "EUR", "KWD"},
    )


def make_line(n: int = 1, **overrides: Any) -> DealLine:
    fields: dict[str, Any] = {
        "id": f"00k00000000000{n:02d}AAA"[:18],
        "product_code": "PLAT-SUB",
        "description": "Platform subscription",
        "quantity": Decimal("2"),
        "unit_price": Decimal("100.00"),
        "discount_percent": Decimal("10"),
        "service_date": date(2026, 11, 1),
    }
    fields.update(overrides)
    return DealLine(**fields)


def make_deal(lines: tuple[DealLine, ...] | None = None, **overrides: Any) -> Deal:
    lines = (make_line(1),) if lines is None else lines
    currency = overrides.get("currency", "USD")
    try:
        amount = sum((line.amount(currency) for line in lines), Decimal(0))
    except ValueError:  # a deliberately broken line: the amount is not the point
        amount = Decimal(0)
    fields: dict[str, Any] = {
        "id": "006000000000001AAA",
        "account": Account(
            id="001000000000001AAA",
            name="O'Brien & Sons",
            number="AC-00001",
            billing_email="ap@obrien.example",
            billing_address=Address(line1="1 Market St", city="Austin", country="US"),
        ),
        "name": "O'Brien & Sons — renewal",
        "close_date": date(2026, 11, 1),
        "currency": currency,
        "amount": amount,
        "lines": lines,
        "revision": REVISION,
        "target_hint": "QuickBooks",
    }
    fields.update(overrides)
    return Deal(**fields)


@pytest.fixture(scope="session")
def mapping() -> LoadedMapping:
    return load_mappings()


def make_planner(mapping: LoadedMapping, **overrides: Any) -> Planner:
    fields: dict[str, Any] = {
        "mapping": mapping,
        "catalogs": {"quickbooks": qbo_catalog(), "stripe": stripe_catalog()},
        "default_target": None,
        "idempotency_key": invoice_key,
    }
    fields.update(overrides)
    return Planner(**fields)
