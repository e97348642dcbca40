"""Admin routes (`/_sandbox/stripe/...`): things that happen at Stripe, not through the API.

A customer paying (in part or in full), a card declining, a refund issued from the
Dashboard or failing at the bank, a dispute (or inquiry) opened, escalated and closed by
the bank, an invoice marked uncollectible or voided from the Dashboard, a customer
removed out of band. Each changes state and emits the signed events Stripe would send; their
`request` is `{"id": null, "idempotency_key": null}`, as for Dashboard actions.
Bodies are JSON; amounts are integers in minor units.

With several accounts, `?account=<name>` picks one; without it the route acts in the
account that holds the object named in the path (ids are unique across accounts), else
in the default (first) account.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from billsync.sandbox.stripe import customers, lifecycle, payments
from billsync.sandbox.stripe.accounts import Accounts
from billsync.sandbox.stripe.errors import StripeError
from billsync.sandbox.stripe.payment_routes import REFUND_REASONS
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import OUT_OF_BAND, Obj
from billsync.sandbox.stripe.views import invoice as view
from billsync.sandbox.stripe.wire import dumps

Action = Callable[[State, dict[str, Any], dict[str, str]], Obj]


def _amount(body: dict[str, Any], key: str = "amount") -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise StripeError(f"{key} must be an integer number of minor units, got {value!r}")
    return value


def _endpoint(accounts: Accounts, action: Action) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw, parse_float=Decimal) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            return JSONResponse({"error": f"body is not JSON: {exc.msg}"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        path = dict(request.path_params)
        try:
            name = request.query_params.get("account")
            account = accounts.named(name) if name else accounts.owner(path["id"])
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        state = (account or accounts.default).state
        try:
            result = action(state, body, path)
        except StripeError as exc:
            return JSONResponse(
                {"error": exc.message}, status_code=404 if exc.status == 404 else 400
            )
        return Response(dumps(result), media_type="application/json")

    return endpoint


def routes(accounts: Accounts) -> list[BaseRoute]:
    def invoice(state: State, path: dict[str, str]) -> Obj:
        return state.store.invoices.require(path["id"])

    def pay(state: State, body: dict[str, Any], path: dict[str, str]) -> Obj:
        inv = invoice(state, path)
        amount = _amount(body)
        payment = payments.record_payment(
            state, inv, inv["amount_remaining"] if amount is None else amount, OUT_OF_BAND
        )
        return {"invoice": view(state.store, inv), "invoice_payment": payment}

    def fail(state: State, body: dict[str, Any], path: dict[str, str]) -> Obj:
        inv = invoice(state, path)
        intent = payments.fail_payment(state, inv, OUT_OF_BAND)
        return {"invoice": view(state.store, inv), "payment_intent": intent}

    def refund(state: State, body: dict[str, Any], path: dict[str, str]) -> Obj:
        inv = invoice(state, path)
        charge = payments.latest_paid_charge(state, inv)
        reason = body.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise StripeError(f"reason must be one of {', '.join(REFUND_REASONS)}")
        made = payments.refund(state, charge, _amount(body), reason, {}, OUT_OF_BAND)
        return {"refund": made, "charge": state.store.charges.by_id[made["charge"]]}

    def fail_refund(state: State, body: dict[str, Any], path: dict[str, str]) -> Obj:
        made = state.store.refunds.require(path["id"])
        reason = str(body.get("failure_reason", "expired_or_canceled_card"))
        failed = payments.fail_refund(state, made, reason, OUT_OF_BAND)
        return {"refund": failed, "charge": state.store.charges.by_id[failed["charge"]]}

    def dispute(state: State, body: dict[str, Any], path: dict[str, str]) -> Obj:
        charge = payments.latest_paid_charge(state, invoice(state, path))
        reason = str(body.get("reason", "general"))
        inquiry = body.get("inquiry", False)
        if not isinstance(inquiry, bool):
            raise StripeError("inquiry must be true or false")
        return payments.open_dispute(
            state, charge, _amount(body), reason, OUT_OF_BAND, inquiry=inquiry
        )

    def update_dispute(state: State, body: dict[str, Any], path: dict[str, str]) -> Obj:
        found = state.store.disputes.require(path["id"])
        return payments.update_dispute(state, found, str(body.get("status", "")), OUT_OF_BAND)

    def close(state: State, body: dict[str, Any], path: dict[str, str]) -> Obj:
        found = state.store.disputes.require(path["id"])
        return payments.close_dispute(state, found, str(body.get("status", "")), OUT_OF_BAND)

    def uncollectible(state: State, body: dict[str, Any], path: dict[str, str]) -> Obj:
        return view(
            state.store, lifecycle.mark_uncollectible(state, invoice(state, path), OUT_OF_BAND)
        )

    def delete_customer(state: State, body: dict[str, Any], path: dict[str, str]) -> Obj:
        return customers.delete(state, state.store.customers.require(path["id"]), OUT_OF_BAND)

    def void(state: State, body: dict[str, Any], path: dict[str, str]) -> Obj:
        return view(state.store, lifecycle.void(state, invoice(state, path), OUT_OF_BAND))

    actions: dict[str, Action] = {
        "/invoices/{id}/pay": pay,
        "/invoices/{id}/fail": fail,
        "/invoices/{id}/refund": refund,
        "/invoices/{id}/dispute": dispute,
        "/invoices/{id}/void": void,
        "/invoices/{id}/mark_uncollectible": uncollectible,
        "/refunds/{id}/fail": fail_refund,
        "/disputes/{id}/update": update_dispute,
        "/disputes/{id}/close": close,
        "/customers/{id}/delete": delete_customer,
    }
    return [
        Route(path, _endpoint(accounts, action), methods=["POST"])
        for path, action in actions.items()
    ]
