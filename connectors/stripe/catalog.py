"""What the mapping layer may ask Stripe before a draft is accepted.

Products and active prices are fetched once per catalog (one per run), 100 a page, and
indexed, so resolving the lines of a thousand deals costs a handful of list calls:
- ``("price", "price_…")``: that price (from the index, else one retrieve) and its product;
- ``("lookup_key", "PLAT-SUB-USD")``: the active price with that key; a key missing from
  the active index gets one targeted ``lookup_keys[]`` list, which also finds an archived
  price so the operator is told it is inactive rather than missing;
- ``("product_code", code)``: the product whose ``metadata.product_code`` is the code;
- ``("name", name)``: the product with that exact name.
The match is always the *product* (``ProductMatch.ref`` = ``prod_…``): lines are billed
at the deal's own prices on that product (`lines.py`), never at a catalogue price that
may differ from what was sold. Inline prices created for past invoices are inactive,
which is why only active prices are prefetched.
"""

from __future__ import annotations

from typing import Any

from billsync.connectors.stripe.amounts import STRIPE_CURRENCIES, stripe_currency
from billsync.connectors.stripe.client import StripeApi
from billsync.connectors.stripe.convert import metadata
from billsync.core import money
from billsync.core.catalog import ProductMatch, ProductQuery
from billsync.core.protocols import ConnectorError

__all__ = ["STRIPE_CURRENCIES", "StripeCatalog"]  # STRIPE_CURRENCIES re-exported


class StripeCatalog:
    """A per-run snapshot of Stripe products and prices for `billsync.mappings.plan`."""

    def __init__(self, api: StripeApi, *, name: str = "stripe") -> None:
        self.target = name  # the connection's name (`BuildContext.connection`)
        self._api = api
        self._products: dict[str, dict[str, Any]] | None = None
        self._prices: dict[str, dict[str, Any]] | None = None  # active, by id
        self._by_lookup_key: dict[str, dict[str, Any]] = {}
        self._price_by_id: dict[str, dict[str, Any] | None] = {}
        self._tax_rates: dict[str, bool] = {}

    # --- TargetCatalog -------------------------------------------------------------

    def resolve_product(self, query: ProductQuery) -> ProductMatch | None:
        for kind, value in query.candidates:
            found = self._resolve(kind, value)
            if found is not None:
                return found
        return None

    def currency_problem(self, currency: str) -> str | None:
        try:
            code = stripe_currency(currency)
        except money.UnknownCurrencyError as exc:
            return str(exc)
        if code not in STRIPE_CURRENCIES:
            return f"Stripe does not support {code.upper()} (see docs.stripe.com/currencies)"
        return None

    def term_exists(self, name: str) -> bool:
        # Stripe has no term objects: terms map to days_until_due in the mapping file.
        return True

    def tax_code_exists(self, code: str) -> bool:
        """``code`` is a tax rate id (``txr_…``) put on lines; it must exist and be active."""
        if code not in self._tax_rates:
            try:
                rate = self._api.call(
                    "tax rate lookup",
                    lambda options: self._api.v1.tax_rates.retrieve(code, options=options),
                ).data
            except ConnectorError as exc:
                if exc.error_class != "not_found":
                    raise
                self._tax_rates[code] = False
            else:
                self._tax_rates[code] = bool(rate.get("active"))
        return self._tax_rates[code]

    # --- lookups -------------------------------------------------------------------

    def _resolve(self, kind: str, value: str) -> ProductMatch | None:
        if kind == "price":
            price = self._price(value)
            return None if price is None else self._match(price)
        if kind == "lookup_key":
            price = self._lookup(value)
            return None if price is None else self._match(price)
        if kind == "product_code":
            products = [p for p in self.products().values() if _code(p) == value]
            return _best(products)
        if kind == "name":
            return _best([p for p in self.products().values() if p.get("name") == value])
        return None

    def _match(self, price: dict[str, Any]) -> ProductMatch | None:
        product_id = price.get("product")
        if isinstance(product_id, dict):
            product_id = product_id.get("id")
        product = self.products().get(str(product_id))
        if product is None:
            return None
        return ProductMatch(
            ref=str(product["id"]),
            label=str(product.get("name") or product["id"]),
            active=bool(product.get("active")) and bool(price.get("active")),
        )

    def _price(self, price_id: str) -> dict[str, Any] | None:
        # Explicitly mapped prices are few: fetch each once rather than list them all.
        if self._prices is not None and price_id in self._prices:
            return self._prices[price_id]
        if price_id not in self._price_by_id:
            try:
                self._price_by_id[price_id] = self._api.call(
                    "price lookup",
                    lambda options: self._api.v1.prices.retrieve(price_id, options=options),
                ).data
            except ConnectorError as exc:
                if exc.error_class != "not_found":
                    raise
                self._price_by_id[price_id] = None
        return self._price_by_id[price_id]

    def _lookup(self, key: str) -> dict[str, Any] | None:
        self.prices()
        if key not in self._by_lookup_key:
            # Not among the active prices: an archived price may still hold the key.
            found = list(
                self._api.pages(
                    "price lookup by key",
                    lambda params, options: self._api.v1.prices.list(
                        params=params, options=options
                    ),
                    {"lookup_keys": [key]},
                )
            )
            if not found:
                return None
            self._by_lookup_key[key] = found[0]
        return self._by_lookup_key[key]

    def products(self) -> dict[str, dict[str, Any]]:
        if self._products is None:
            self._products = {
                str(p["id"]): p
                for p in self._api.pages(
                    "product list",
                    lambda params, options: self._api.v1.products.list(
                        params=params, options=options
                    ),
                    {},
                )
            }
        return self._products

    def prices(self) -> dict[str, dict[str, Any]]:
        if self._prices is None:
            self._prices = {}
            for price in self._api.pages(
                "price list",
                lambda params, options: self._api.v1.prices.list(params=params, options=options),
                {"active": True},
            ):
                self._prices[str(price["id"])] = price
                if price.get("lookup_key"):
                    self._by_lookup_key[str(price["lookup_key"])] = price
        return self._prices


def _code(product: dict[str, Any]) -> str | None:
    value = metadata(product).get("product_code")
    return None if value is None else str(value)


def _best(products: list[dict[str, Any]]) -> ProductMatch | None:
    """Prefer an active product, then the oldest, so the choice is stable."""
    if not products:
        return None
    chosen = min(products, key=lambda p: (not p.get("active"), p.get("created") or 0, str(p["id"])))
    return ProductMatch(
        ref=str(chosen["id"]),
        label=str(chosen.get("name") or chosen["id"]),
        active=bool(chosen.get("active")),
    )
