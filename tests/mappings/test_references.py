"""Mapped names must exist in the targets: items, prices, terms, tax codes."""

from __future__ import annotations

from pathlib import Path

from billsync.core.catalog import ProductMatch
from billsync.mappings.loader import load_mappings
from billsync.mappings.references import check_references
from tests.mappings.conftest import FakeCatalog, qbo_catalog, stripe_catalog


def test_default_mapping_references_exist() -> None:
    catalogs = {"quickbooks": qbo_catalog(), "stripe": stripe_catalog()}
    catalogs["quickbooks"].terms |= {"Net 60"}
    assert check_references(load_mappings().spec, catalogs) == []


def test_missing_and_inactive_references_are_named(tmp_path: Path) -> None:
    custom = tmp_path / "custom.yaml"
    custom.write_text(
        "products:\n"
        "  quickbooks:\n    map: {PLAT-SUB: PLAT-SUB, WIDGET: Gadget, LEGACY: OLD-SKU}\n"
        "  stripe:\n    map: {SEAT: price_missing, PLAT-SUB: price_ok}\n"
        "tax:\n  quickbooks:\n    default_code: VAT20\n"
        "terms:\n  values:\n    Net 45: {quickbooks: Net 45}\n"
    )
    stripe: FakeCatalog = stripe_catalog()
    stripe.products[("price", "price_ok")] = ProductMatch("prod_PLAT", "Platform")
    qbo = qbo_catalog()
    qbo.terms |= {"Net 60"}
    problems = [
        str(p)
        for p in check_references(
            load_mappings([custom]).spec, {"quickbooks": qbo, "stripe": stripe}
        )
    ]
    assert problems == [
        "products.quickbooks.map.WIDGET: "
        "no QuickBooks item matches sku 'Gadget' then name 'Gadget'",
        "products.quickbooks.map.LEGACY: QuickBooks item 'Legacy widget' is inactive",
        "terms.values.Net 45.quickbooks: QuickBooks has no term 'Net 45'",
        "tax.quickbooks.default_code: QuickBooks has no tax code 'VAT20'",
        "products.stripe.map.SEAT: no Stripe price matches price 'price_missing'",
    ]
