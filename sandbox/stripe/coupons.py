"""Coupons: the discounts invoice lines can carry (`lines[i][discounts][j][coupon]`).

A line's discount is computed when the invoice's totals are (`billing.recompute`):
percent_off of the line amount, or amount_off (same currency), never more than the line.
"""

from __future__ import annotations

from decimal import Decimal

from starlette.routing import BaseRoute

from billsync.sandbox.stripe import errors, shapes
from billsync.sandbox.stripe.api import Api, Call, retrieve
from billsync.sandbox.stripe.listing import PAGING, list_object, page
from billsync.sandbox.stripe.params import Params, merge_metadata
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Obj, Origin
from billsync.sandbox.stripe.wire import new_id

COUPON_CREATE = (
    "amount_off",
    "applies_to",
    "currency",
    "currency_options",
    "duration",
    "duration_in_months",
    "id",
    "max_redemptions",
    "metadata",
    "name",
    "percent_off",
    "redeem_by",
)


def create_coupon(state: State, params: Params, origin: Origin, *, seeded: bool = False) -> Obj:
    params.allow(COUPON_CREATE)
    for key in ("applies_to", "currency_options"):
        if params.has(key):
            raise errors.not_emulated(key, "product-restricted or multi-currency coupons")
    coupon = shapes.coupon(params.str("id") or new_id("", 8), state.now())
    percent = params.decimal("percent_off")
    amount_off = params.int("amount_off", minimum=1)
    if (percent is None) == (amount_off is None):
        raise errors.StripeError(
            "You must specify exactly one of percent_off or amount_off.",
            param="percent_off",
            saved=False,
        )
    if percent is not None:
        if not Decimal(0) < percent <= Decimal(100):
            raise errors.invalid(
                "percent_off", "percent_off must be greater than 0 and at most 100."
            )
        coupon["percent_off"] = percent
    else:
        coupon["amount_off"] = amount_off
        coupon["currency"] = params.currency("currency", required=True)
    coupon["duration"] = params.enum("duration", ("forever", "once", "repeating"), "once")
    if coupon["duration"] == "repeating":
        coupon["duration_in_months"] = params.int("duration_in_months", required=True, minimum=1)
    coupon["name"] = params.str("name", max_length=40)
    coupon["max_redemptions"] = params.int("max_redemptions", minimum=1)
    coupon["redeem_by"] = params.int("redeem_by")
    coupon["metadata"] = merge_metadata({}, params.metadata())
    state.store.coupons.add(coupon)
    if not seeded:
        state.emit("coupon.created", coupon, origin)
    return coupon


def routes(api: Api, state: State) -> list[BaseRoute]:
    store = state.store

    def list_coupons(call: Call) -> Obj:
        call.params.allow((*PAGING, "created"))
        found, more = page(store.coupons.newest_first(), call.params, "coupon")
        return list_object([store.coupons.by_id[i] for i in found], more, "/v1/coupons")

    def delete_coupon(call: Call) -> Obj:
        coupon = store.coupons.require(call.id())
        store.coupons.remove(coupon["id"])
        state.emit("coupon.deleted", coupon, call.origin)
        return {"id": coupon["id"], "object": "coupon", "deleted": True}

    return [
        api.route(
            "POST", "/v1/coupons", lambda call: create_coupon(state, call.params, call.origin)
        ),
        api.route("GET", "/v1/coupons", list_coupons),
        api.route("GET", "/v1/coupons/{id}", retrieve(store.coupons)),
        api.route("DELETE", "/v1/coupons/{id}", delete_coupon),
    ]
