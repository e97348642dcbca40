"""The catalog against the sandbox's generated catalogue (products with
metadata.product_code, prices with lookup_key CODE-CURRENCY): what it finds and what it
costs."""

from __future__ import annotations

from typing import Any

import requests

from billsync.core.catalog import ProductMatch, ProductQuery
from tests.connectors.stripe.support import CATALOGUE, ConnectorEnv


def post(env: ConnectorEnv, path: str, data: dict[str, Any]) -> Any:
    response = requests.post(
        f"{env.info['stripe_url']}{path}",
        data=data,
        headers={"Authorization": f"Bearer {env.info['stripe_api_key']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def query(*candidates: tuple[str, str], currency: str = "USD") -> ProductQuery:
    return ProductQuery("PLAT-SUB", currency, candidates)


def test_every_product_in_every_currency_costs_two_list_calls(env: ConnectorEnv) -> None:
    catalog = env.connect().target.catalog()
    codes = [p["metadata"]["product_code"] for p in CATALOGUE["products"]]
    for code in codes:
        for currency in ("USD", "EUR", "GBP", "JPY", "CAD"):
            found = catalog.resolve_product(
                ProductQuery(code, currency, (("lookup_key", f"{code}-{currency}"),))
            )
            assert found is not None and found.ref == f"prod_{code.replace('-', '')}"
            assert found.active
    assert env.calls() == {"GET /v1/products": 1, "GET /v1/prices": 1}


def test_lookup_key_price_product_code_and_name(env: ConnectorEnv) -> None:
    catalog = env.connect().target.catalog()
    expected = ProductMatch("prod_PLATSUB", "Platform subscription (annual)", True)
    assert catalog.resolve_product(query(("lookup_key", "PLAT-SUB-USD"))) == expected
    assert catalog.resolve_product(query(("product_code", "PLAT-SUB"))) == expected
    assert catalog.resolve_product(query(("name", "Platform subscription (annual)"))) == expected
    price_id = next(iter(catalog.prices()))
    price = catalog.prices()[price_id]
    assert catalog.resolve_product(query(("price", price_id))) is not None
    assert catalog.resolve_product(query(("price", price_id))).ref == price["product"]  # type: ignore[union-attr]
    # Candidates are tried in order: a missing lookup key falls through to the code.
    assert (
        catalog.resolve_product(query(("lookup_key", "NOPE-USD"), ("product_code", "PLAT-SUB")))
        == expected
    )
    assert catalog.resolve_product(query(("lookup_key", "NOPE-USD"))) is None
    assert catalog.resolve_product(query(("price", "price_missing"))) is None


def test_archived_prices_and_products_are_found_but_inactive(env: ConnectorEnv) -> None:
    old = post(env, "/v1/prices", {"currency": "usd", "unit_amount": 100,
                                   "product": "prod_SEAT", "lookup_key": "SEAT-OLD"})  # fmt: skip
    post(env, f"/v1/prices/{old['id']}", {"active": "false"})
    post(env, "/v1/products/prod_ONBOARD", {"active": "false"})
    env.clear_calls()
    catalog = env.connect().target.catalog()
    seat = catalog.resolve_product(query(("lookup_key", "SEAT-OLD")))
    assert seat is not None and seat.ref == "prod_SEAT" and not seat.active
    onboard = catalog.resolve_product(query(("product_code", "ONBOARD")))
    assert onboard is not None and not onboard.active
    # The archived key cost one targeted list after the two prefetches.
    assert env.calls() == {"GET /v1/products": 1, "GET /v1/prices": 2}


def test_currencies_terms_and_tax_codes(env: ConnectorEnv) -> None:
    catalog = env.connect().target.catalog()
    assert catalog.currency_problem("USD") is None and catalog.currency_problem("kwd") is None
    assert "does not support" in (catalog.currency_problem("IQD") or "")
    assert "ISO 4217" in (catalog.currency_problem("XAU") or "")
    assert catalog.term_exists("Net 30")
    # The sandbox does not emulate tax rates: an unknown id is simply not a tax code.
    assert not catalog.tax_code_exists("txr_unknown")
