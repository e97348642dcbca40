"""Products and prices: what invoice lines point at."""

from __future__ import annotations

import copy
from decimal import Decimal

from starlette.routing import BaseRoute

from billsync.sandbox.stripe import errors, shapes
from billsync.sandbox.stripe.api import Api, Call, retrieve
from billsync.sandbox.stripe.listing import PAGING, list_object, page
from billsync.sandbox.stripe.params import Params, in_range, merge_metadata
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Obj, Origin
from billsync.sandbox.stripe.wire import decimal_text, new_id

PRODUCT_CREATE = (
    "active", "default_price_data", "description", "id", "images", "marketing_features",
    "metadata", "name", "package_dimensions", "shippable", "statement_descriptor", "tax_code",
    "tax_details", "type", "unit_label", "url",
)  # fmt: skip
PRODUCT_UPDATE = (
    "active",
    "default_price",
    "description",
    "images",
    "marketing_features",
    "metadata",
    "name",
    "shippable",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "url",
)
PRICE_CREATE = (
    "active", "billing_scheme", "currency", "currency_options", "custom_unit_amount",
    "lookup_key", "metadata", "nickname", "product", "product_data", "recurring",
    "tax_behavior", "tiers", "tiers_mode", "transfer_lookup_key", "transform_quantity",
    "unit_amount", "unit_amount_decimal",
)  # fmt: skip
PRICE_UPDATE = (
    "active",
    "lookup_key",
    "metadata",
    "nickname",
    "tax_behavior",
    "transfer_lookup_key",
)
_TAX_BEHAVIOR = ("exclusive", "inclusive", "unspecified")


def _product_fields(product: Obj, params: Params) -> None:
    for key in ("description", "statement_descriptor", "tax_code", "unit_label", "url"):
        if key in params:
            product[key] = params.str(key)
    if "name" in params:
        product["name"] = params.str("name", required=True)
    if "active" in params:
        product["active"] = params.bool("active", True)
    if "shippable" in params:
        product["shippable"] = params.bool("shippable", False)
    if "images" in params:
        product["images"] = params.strings("images", max_items=8)
    product["metadata"] = merge_metadata(product["metadata"], params.metadata())


def create_product(state: State, params: Params, origin: Origin, *, seeded: bool = False) -> Obj:
    params.allow(PRODUCT_CREATE)
    name = params.str("name", required=True)
    assert name is not None
    product = shapes.product(params.str("id") or new_id("prod_", 14), state.now(), name)
    product["type"] = params.enum("type", ("good", "service"), "service")
    _product_fields(product, params)
    if product["id"] in state.store.products.by_id:
        state.store.products.add(product)  # raises resource_already_exists
    default = None
    data = params.sub("default_price_data")
    if data is not None:
        data.allow(
            (
                "currency",
                "metadata",
                "recurring",
                "tax_behavior",
                "unit_amount",
                "unit_amount_decimal",
            )
        )
        default = _build_price(state, data, product["id"])
        product["default_price"] = default["id"]
    state.store.products.add(product)
    if default is not None:
        state.store.prices.add(default)
    if not seeded:
        state.emit("product.created", product, origin)
        if default is not None:
            state.emit("price.created", default, origin)
    return product


def _unit_amount(price: Obj, params: Params) -> None:
    has_int, has_dec = params.has("unit_amount"), params.has("unit_amount_decimal")
    if has_int and has_dec:
        raise errors.invalid(
            "unit_amount",
            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
        )
    if has_int:
        amount = params.int("unit_amount", minimum=0)
        assert amount is not None
        price["unit_amount"], price["unit_amount_decimal"] = amount, str(amount)
    elif has_dec:
        exact = params.decimal("unit_amount_decimal", minimum=Decimal(0))
        assert exact is not None
        # unit_amount is only set when the decimal amount is a whole number of minor units.
        whole = exact == exact.to_integral_value()
        price["unit_amount"] = int(exact) if whole else None
        price["unit_amount_decimal"] = decimal_text(exact)
    else:
        raise errors.missing("unit_amount")


def _build_price(state: State, params: Params, product_id: str, price_id: str | None = None) -> Obj:
    """A validated price, not stored yet (callers add it once everything validated)."""
    currency = params.currency("currency", required=True)
    assert currency is not None
    price = shapes.price(price_id or new_id("price_", 24), state.now(), currency, product_id)
    _unit_amount(price, params)
    price["tax_behavior"] = params.enum("tax_behavior", _TAX_BEHAVIOR, "unspecified")
    price["metadata"] = merge_metadata({}, params.metadata())
    recurring = params.sub("recurring")
    if recurring is not None:
        recurring.allow(("interval", "interval_count", "meter", "usage_type"))
        interval = recurring.enum("interval", ("day", "week", "month", "year"))
        if interval is None:
            raise errors.missing("recurring[interval]")
        price["type"] = "recurring"
        price["recurring"] = {
            "interval": interval,
            "interval_count": recurring.int("interval_count", minimum=1) or 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": recurring.enum("usage_type", ("licensed", "metered"), "licensed"),
        }
    return price


def create_price(state: State, params: Params, origin: Origin, *, seeded: bool = False) -> Obj:
    params.allow((*PRICE_CREATE, "id") if seeded else PRICE_CREATE)
    for key in (
        "currency_options",
        "custom_unit_amount",
        "tiers",
        "tiers_mode",
        "transform_quantity",
    ):
        if params.has(key):
            raise errors.not_emulated(key, "tiered, custom-amount or multi-currency prices")
    if params.enum("billing_scheme", ("per_unit", "tiered"), "per_unit") != "per_unit":
        raise errors.not_emulated("billing_scheme", "tiered prices")
    if params.has("product") == params.has("product_data"):
        raise errors.StripeError(
            "You must specify exactly one of product or product_data.", param="product", saved=False
        )
    product_id = params.str("product")
    data = params.sub("product_data")
    if product_id is not None:
        state.store.products.require(product_id, "product", in_path=False)
    else:
        assert data is not None
        data.allow(
            ("active", "id", "metadata", "name", "statement_descriptor", "tax_code", "unit_label")
        )
        data.str("name", required=True)
    price = _build_price(state, params, product_id or "", params.str("id") if seeded else None)
    for key in ("lookup_key", "nickname"):
        price[key] = params.str(key)
    price["active"] = params.bool("active", True)
    if price["id"] in state.store.prices.by_id:
        state.store.prices.add(price)  # raises resource_already_exists
    if data is not None:  # everything validated: now the inline product may be created
        price["product"] = create_product(state, data, origin, seeded=seeded)["id"]
    state.store.prices.add(price)
    if not seeded:
        state.emit("price.created", price, origin)
    return price


def routes(api: Api, state: State) -> list[BaseRoute]:
    store = state.store

    def update_product(call: Call) -> Obj:
        call.params.allow(PRODUCT_UPDATE)
        product = store.products.require(call.id())
        before = copy.deepcopy(product)
        _product_fields(product, call.params)
        if call.params.has("default_price"):
            default = store.prices.require(
                call.params.str("default_price") or "", "default_price", in_path=False
            )
            product["default_price"] = default["id"]
        product["updated"] = state.now()
        state.emit("product.updated", product, call.origin, before)
        return product

    def list_products(call: Call) -> Obj:
        params = call.params
        params.allow((*PAGING, "active", "created", "ids", "shippable", "type", "url"))
        active = params.bool("active", True) if params.has("active") else None
        wanted = set(params.strings("ids")) or None
        created = params.range("created")

        def match(product_id: str) -> bool:
            product = store.products.by_id[product_id]
            return (
                (active is None or product["active"] == active)
                and (wanted is None or product_id in wanted)
                and in_range(product["created"], created)
            )

        found, more = page(store.products.newest_first(), params, "product", match)
        return list_object([store.products.by_id[i] for i in found], more, "/v1/products")

    def update_price(call: Call) -> Obj:
        call.params.allow(PRICE_UPDATE)
        price = store.prices.require(call.id())
        before = copy.deepcopy(price)
        for key in ("lookup_key", "nickname"):
            if key in call.params:
                price[key] = call.params.str(key)
        if "active" in call.params:
            price["active"] = call.params.bool("active", True)
        if "tax_behavior" in call.params:
            price["tax_behavior"] = call.params.enum("tax_behavior", _TAX_BEHAVIOR)
        price["metadata"] = merge_metadata(price["metadata"], call.params.metadata())
        state.emit("price.updated", price, call.origin, before)
        return price

    def list_prices(call: Call) -> Obj:
        params = call.params
        params.allow(
            (
                *PAGING,
                "active",
                "created",
                "currency",
                "lookup_keys",
                "product",
                "recurring",
                "type",
            )
        )
        active = params.bool("active", True) if params.has("active") else None
        product = params.str("product")
        currency = params.currency("currency")
        kind = params.enum("type", ("one_time", "recurring"))
        keys = set(params.strings("lookup_keys", max_items=10)) or None
        created = params.range("created")

        def match(price_id: str) -> bool:
            price = store.prices.by_id[price_id]
            return (
                (active is None or price["active"] == active)
                and (product is None or price["product"] == product)
                and (currency is None or price["currency"] == currency)
                and (kind is None or price["type"] == kind)
                and (keys is None or price["lookup_key"] in keys)
                and in_range(price["created"], created)
            )

        found, more = page(store.prices.newest_first(), params, "price", match)
        return list_object([store.prices.by_id[i] for i in found], more, "/v1/prices")

    return [
        api.route(
            "POST", "/v1/products", lambda call: create_product(state, call.params, call.origin)
        ),
        api.route("GET", "/v1/products", list_products),
        api.route("GET", "/v1/products/{id}", retrieve(store.products)),
        api.route("POST", "/v1/products/{id}", update_product),
        api.route("POST", "/v1/prices", lambda call: create_price(state, call.params, call.origin)),
        api.route("GET", "/v1/prices", list_prices),
        api.route("GET", "/v1/prices/{id}", retrieve(store.prices)),
        api.route("POST", "/v1/prices/{id}", update_price),
    ]
