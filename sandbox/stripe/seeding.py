"""Loading seed records into a Stripe account, and its snapshot for `/_sandbox/state`.

Seeding goes through the create handlers (so derived fields and indexes are right)
without auth, idempotency or webhooks.
"""

from __future__ import annotations

import json
from typing import Any

from billsync.sandbox.stripe import catalog, coupons, customers, errors
from billsync.sandbox.stripe.params import Params
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import OUT_OF_BAND
from billsync.sandbox.stripe.views import invoice as invoice_view
from billsync.sandbox.stripe.wire import dumps

# Fields of Stripe-shaped seed records that are read-only (not create parameters).
_COMMON_READ_ONLY = {"object", "livemode", "created", "updated", "deleted"}
_SEED_READ_ONLY = {
    "customers": _COMMON_READ_ONLY | {
        "cash_balance", "currency", "customer_account", "default_source", "delinquent",
        "discount", "invoice_credit_balance", "sources", "subscriptions", "tax", "tax_ids",
        "test_clock",
    },
    "products": _COMMON_READ_ONLY | {
        "default_price", "marketing_features", "package_dimensions", "tax_details",
    },
    "prices": _COMMON_READ_ONLY | {
        "billing_scheme", "currency_options", "custom_unit_amount", "tiers", "tiers_mode",
        "transform_quantity", "type",
    },
    "coupons": _COMMON_READ_ONLY | {"applies_to", "currency_options", "times_redeemed", "valid"},
}  # fmt: skip


def seed(state: State, data: dict[str, Any]) -> None:
    unknown = set(data) - set(_SEED_READ_ONLY)
    if unknown:
        raise ValueError(f"unknown stripe seed sections: {sorted(unknown)}")
    makers = (
        ("products", catalog.create_product),
        ("prices", catalog.create_price),
        ("coupons", coupons.create_coupon),
        ("customers", customers.create),
    )
    for section, make in makers:
        for index, record in enumerate(data.get(section) or []):
            if not isinstance(record, dict):
                raise ValueError(f"stripe.{section}[{index}] must be an object")
            ignored = _SEED_READ_ONLY[section]
            fields = {k: v for k, v in record.items() if k not in ignored and v is not None}
            if section == "prices" and "unit_amount" in fields:
                fields.pop("unit_amount_decimal", None)  # Stripe renders both
            try:
                make(state, Params(fields), OUT_OF_BAND, seeded=True)
            except errors.StripeError as exc:
                raise ValueError(f"stripe.{section}[{index}]: {exc.message}") from None


def snapshot(state: State) -> dict[str, Any]:
    store = state.store
    result: dict[str, Any] = {}
    for name, collection in store.collections().items():
        if name == "invoices":
            result[name] = [invoice_view(store, inv) for inv in collection.values()]
        else:
            result[name] = collection.values()
    # Coupons' percent_off and tax rates' percentage are the Decimals (percentages, not
    # money); the admin API renders with the standard encoder, so they go through JSON
    # text first.
    result["coupons"] = json.loads(dumps(result["coupons"]))
    result["tax_rates"] = json.loads(dumps(result["tax_rates"]))
    result["events"] = len(state.events.ids)
    return result
