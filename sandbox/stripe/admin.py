"""Admin routes (`/_sandbox/stripe/...`): things that happen at Stripe, not through the API.

A customer paying (in part or in full), a card declining, a refund issued from the
Dashboard or failing at the bank, a dispute (or inquiry) opened, escalated and closed by
the bank, an invoice marked uncollectible or voided from the Dashboard, a customer
removed out of band. Each changes state and emits the signed events Stripe would send; their
`request` is `{"id": null, "idempotency_key": null}`, as for Dashboard actions.
Bodies are JSON; amounts are integers in minor units.
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
from billsync.sandbox.stripe.errors import StripeError
from billsync.sandbox.stripe.payment_routes import REFUND_REASONS
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import OUT_OF_BAND, Obj
from billsync.sandbox.stripe.views import invoice as view
from billsync.sandbox.stripe.wire import dumps

Action = Callable[[dict[str, Any], dict[str, str]], Obj]


def _amount(body: dict[str, Any], key: str = "amount") -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise StripeError(f"{key} must be an integer number of minor units, got {value!r}")
    return value


def _endpoint(action: Action) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw, parse_float=Decimal) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            return JSONResponse({"error": f"body is not JSON: {exc.msg}"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        try:
            result = action(body, dict(request.path_params))
        except StripeError as exc:
            return JSONResponse(
                {"error": exc.message}, status_code=404 if exc.status == 404 else 400
            )
        return Response(dumps(result), media_type="application/json")

    return endpoint


def routes(state: State) -> list[BaseRoute]:
    store = state.store

    def invoice(path: dict[str, str]) -> Obj:
        return store.invoices.require(path["id"])

    def pay(body: dict[str, Any], path: dict[str, str]) -> Obj:
        inv = invoice(path)
        amount = _amount(body)
        payment = payments.record_payment(
            state, inv, inv["amount_remaining"] if amount is None else amount, OUT_OF_BAND
        )
        return {"invoice": view(store, inv), "invoice_payment": payment}

    def fail(body: dict[str, Any], path: dict[str, str]) -> Obj:
        inv = invoice(path)
        intent = payments.fail_payment(state, inv, OUT_OF_BAND)
        return {"invoice": view(store, inv), "payment_intent": intent}

    def refund(body: dict[str, Any], path: dict[str, str]) -> Obj:
        inv = invoice(path)
        charge = payments.latest_paid_charge(state, inv)
        reason = body.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise StripeError(f"reason must be one of {', '.join(REFUND_REASONS)}")
        made = payments.refund(state, charge, _amount(body), reason, {}, OUT_OF_BAND)
        return {"refund": made, "charge": store.charges.by_id[made["charge"]]}

    def fail_refund(body: dict[str, Any], path: dict[str, str]) -> Obj:
        made = store.refunds.require(path["id"])
        reason = str(body.get("failure_reason", "expired_or_canceled_card"))
        failed = payments.fail_refund(state, made, reason, OUT_OF_BAND)
        return {"refund": failed, "charge": store.charges.by_id[failed["charge"]]}

    def dispute(body: dict[str, Any], path: dict[str, str]) -> Obj:
        charge = payments.latest_paid_charge(state, invoice(path))
        reason = str(body.get("reason", "general"))
        inquiry = body.get("inquiry", False)
        if not isinstance(inquiry, bool):
            raise StripeError("inquiry must be true or false")
        return payments.open_dispute(
            state, charge, _amount(body), reason, OUT_OF_BAND, inquiry=inquiry
        )

    def update_dispute(body: dict[str, Any], path: dict[str, str]) -> Obj:
        found = store.disputes.require(path["id"])
        return payments.update_dispute(state, found, str(body.get("status", "")), OUT_OF_BAND)

    def close(body: dict[str, Any], path: dict[str, str]) -> Obj:
        found = store.disputes.require(path["id"])
        return payments.close_dispute(state, found, str(body.get("status", "")), OUT_OF_BAND)

    def uncollectible(body: dict[str, Any], path: dict[str, str]) -> Obj:
        return view(store, lifecycle.mark_uncollectible(state, invoice(path), OUT_OF_BAND))

    def delete_customer(body: dict[str, Any], path: dict[str, str]) -> Obj:
        return customers.delete(state, store.customers.require(path["id"]), OUT_OF_BAND)

    def void(body: dict[str, Any], path: dict[str, str]) -> Obj:
        return view(store, lifecycle.void(state, invoice(path), OUT_OF_BAND))

    return [
        Route("/invoices/{id}/pay", _endpoint(pay), methods=["POST"]),
        Route("/invoices/{id}/fail", _endpoint(fail), methods=["POST"]),
        Route("/invoices/{id}/refund", _endpoint(refund), methods=["POST"]),
        Route("/invoices/{id}/dispute", _endpoint(dispute), methods=["POST"]),
        Route("/invoices/{id}/void", _endpoint(void), methods=["POST"]),
        Route("/invoices/{id}/mark_uncollectible", _endpoint(uncollectible), methods=["POST"]),
        Route("/refunds/{id}/fail", _endpoint(fail_refund), methods=["POST"]),
        Route("/disputes/{id}/update", _endpoint(update_dispute), methods=["POST"]),
        Route("/disputes/{id}/close", _endpoint(close), methods=["POST"]),
        Route("/customers/{id}/delete", _endpoint(delete_customer), methods=["POST"]),
    ]
