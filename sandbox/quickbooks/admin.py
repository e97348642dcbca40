"""Admin routes under `/_sandbox/quickbooks/`: act as the customer, Intuit or the ops
person would (record, edit, move, void or delete a payment; issue or void a credit memo
applied to an invoice; void an invoice; revoke the app, expire tokens, throttle).

Each money route goes through the same operations as the public API (SyncToken bump,
balances, CDC, webhooks), so a test can drive a whole lifecycle over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from billsync.sandbox import jsonutil
from billsync.sandbox.quickbooks.errors import QboFault, fault_response, json_response
from billsync.sandbox.quickbooks.spec import Write
from billsync.sandbox.quickbooks.values import ref_value, to_decimal

if TYPE_CHECKING:
    from billsync.sandbox.quickbooks.system import QuickBooksSandbox


def admin_routes(qb: QuickBooksSandbox) -> list[BaseRoute]:
    async def payments(request: Request) -> Response:
        body = await _body(request)
        w = Write(qb.realm(body.get("realm_id")), qb.clock.now())
        try:
            payment = _record_payment(qb, w, body)
        except QboFault as fault:
            return fault_response(fault, w.now)
        finally:
            qb.notifier.flush(w.realm)
        return json_response({"Payment": payment})

    async def void_payment(request: Request) -> Response:
        body = await _body(request)
        w = Write(qb.realm(body.get("realm_id")), qb.clock.now())
        try:
            current = qb.ops.read(w, "Payment", request.path_params["id"])
            payment = qb.ops.void(
                w, "Payment", {"Id": current["Id"], "SyncToken": current["SyncToken"]}
            )
        except QboFault as fault:
            return fault_response(fault, w.now)
        finally:
            qb.notifier.flush(w.realm)
        return json_response({"Payment": payment})

    def act(action: Any) -> Any:
        async def route(request: Request) -> Response:
            body = await _body(request)
            w = Write(qb.realm(body.get("realm_id")), qb.clock.now())
            try:
                result = action(w, request.path_params.get("id", ""), body)
            except QboFault as fault:
                return fault_response(fault, w.now)
            finally:
                qb.notifier.flush(w.realm)
            return json_response(result)

        return route

    def update_payment(w: Write, payment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"Payment": _update_payment(qb, w, payment_id, body)}

    def delete_payment(w: Write, payment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        current = qb.ops.read(w, "Payment", payment_id)
        gone = {"Id": current["Id"], "SyncToken": current["SyncToken"]}
        return {"Payment": qb.ops.delete(w, "Payment", gone)}

    def credit_memo(w: Write, _: str, body: dict[str, Any]) -> dict[str, Any]:
        return _apply_credit_memo(qb, w, body)

    def void(entity: str) -> Any:
        def run(w: Write, record_id: str, body: dict[str, Any]) -> dict[str, Any]:
            current = qb.ops.read(w, entity, record_id)
            named = {"Id": current["Id"], "SyncToken": current["SyncToken"]}
            return {entity: qb.ops.void(w, entity, named)}

        return run

    async def webhook_format(request: Request) -> Response:
        body = await _body(request)
        if request.method == "POST":
            chosen = body.get("format")
            if chosen not in ("legacy", "cloudevents"):
                return _bad("format must be legacy or cloudevents")
            qb.notifier.format = chosen
        return JSONResponse({"format": qb.notifier.format})

    async def preferences(request: Request) -> Response:
        # Each company has its own; `realm_id` (id or connection name, in the query or
        # the body) picks one, the default realm otherwise.
        changes = await _body(request) if request.method == "POST" else {}
        chosen = changes.pop("realm_id", None) or request.query_params.get("realm_id")
        prefs = qb.realm(chosen).preferences
        for key, value in changes.items():
            if not hasattr(prefs, key):
                return _bad(f"unknown preference {key!r}")
            setattr(prefs, key, value)
        return JSONResponse(prefs.describe())

    async def notifications(request: Request) -> Response:
        # {"hold": true} gathers changes (of every realm) until {"hold": false} sends
        # them as one notification: Intuit's aggregation window, made deterministic.
        body = await _body(request)
        if request.method == "POST" and "hold" in body:
            qb.notifier.hold(bool(body["hold"]))
        return JSONResponse({"hold": qb.notifier.held, "route": qb.notifier.route})

    async def throttle(request: Request) -> Response:
        body = await _body(request)
        qb.throttle.remaining = int(body.get("count", 1))
        qb.throttle.as_xml = body.get("format", "xml") != "json"
        return JSONResponse({"remaining": qb.throttle.remaining, "xml": qb.throttle.as_xml})

    async def oauth_code(request: Request) -> Response:
        body = await _body(request)
        # Any realm id (a code for a company no connection serves is a useful test), or a
        # connection name.
        realm_id = qb.realm_id_of(body.get("realm_id"))
        code = qb.oauth.mint_code(realm_id, body.get("redirect_uri"))
        return JSONResponse({"code": code, "realm_id": realm_id})

    async def oauth_revoke(request: Request) -> Response:
        body = await _body(request)
        return JSONResponse({"revoked_grants": qb.oauth.revoke(body.get("token"))})

    async def oauth_expire(request: Request) -> Response:
        body = await _body(request)
        return JSONResponse({"expired": qb.oauth.expire_access_tokens(body.get("access_token"))})

    async def oauth_config(request: Request) -> Response:
        body = await _body(request)
        if request.method == "POST" and "refresh_grace_s" in body:
            grace = body["refresh_grace_s"]
            qb.oauth.refresh_grace_s = None if grace is None else int(grace)
        return JSONResponse(
            {
                "refresh_grace_s": qb.oauth.refresh_grace_s,
                "initial_refresh_token": qb.oauth.initial_refresh_token,
                "initial_refresh_tokens": qb.oauth.initial_refresh_tokens,
                "refresh_tokens": len(qb.oauth.refresh_tokens),
                "access_tokens": len(qb.oauth.access_tokens),
            }
        )

    async def state(request: Request) -> Response:
        return Response(jsonutil.dumps(qb.snapshot()), media_type="application/json")

    return [
        Route("/payments", payments, methods=["POST"]),
        Route("/payments/{id}/void", void_payment, methods=["POST"]),
        Route("/payments/{id}/update", act(update_payment), methods=["POST"]),
        Route("/payments/{id}/delete", act(delete_payment), methods=["POST"]),
        Route("/credit_memos", act(credit_memo), methods=["POST"]),
        Route("/credit_memos/{id}/void", act(void("CreditMemo")), methods=["POST"]),
        Route("/invoices/{id}/void", act(void("Invoice")), methods=["POST"]),
        Route("/webhook_format", webhook_format, methods=["GET", "POST"]),
        Route("/preferences", preferences, methods=["GET", "POST"]),
        Route("/notifications", notifications, methods=["GET", "POST"]),
        Route("/throttle", throttle, methods=["POST"]),
        Route("/oauth/code", oauth_code, methods=["POST"]),
        Route("/oauth/revoke", oauth_revoke, methods=["POST"]),
        Route("/oauth/expire_access_tokens", oauth_expire, methods=["POST"]),
        Route("/oauth/config", oauth_config, methods=["GET", "POST"]),
        Route("/state", state, methods=["GET"]),
    ]


def _record_payment(qb: QuickBooksSandbox, w: Write, body: dict[str, Any]) -> dict[str, Any]:
    """A customer pays an invoice: the part above the open balance stays unapplied."""
    invoice = qb.ops.read(w, "Invoice", str(body.get("invoice_id", "")))
    amount = to_decimal(body.get("amount"), "amount")
    if amount is None or amount <= 0:
        raise QboFault("2020", "Required param missing", "amount must be a positive decimal")
    balance = to_decimal(invoice.get("Balance"), "Balance") or Decimal(0)
    applied = min(amount, balance)
    payment: dict[str, Any] = {
        "CustomerRef": {"value": body.get("customer_id") or ref_value(invoice["CustomerRef"])},
        "TotalAmt": amount,
        "CurrencyRef": invoice.get("CurrencyRef"),
        "Line": [{"Amount": applied, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]
        if applied > 0
        else [],
    }
    if invoice.get("ExchangeRate") is not None:
        payment["ExchangeRate"] = invoice["ExchangeRate"]
    return qb.ops.create(w, "Payment", payment)


def _update_payment(
    qb: QuickBooksSandbox, w: Write, payment_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The customer's payment edited in the UI: a full update with the SyncToken.
    ``amount`` changes TotalAmt; ``invoice_id`` re-points its invoice lines to another
    invoice (the one line it had, or a new one). What the invoice cannot take stays
    unapplied, as in `_record_payment`."""
    current = qb.ops.read(w, "Payment", payment_id)
    total = to_decimal(body.get("amount"), "amount")
    if total is None:
        total = to_decimal(current.get("TotalAmt"), "TotalAmt") or Decimal(0)
    credit_lines = [
        line
        for line in current.get("Line") or []
        if any(link.get("TxnType") == "CreditMemo" for link in line.get("LinkedTxn") or [])
    ]
    credit = sum((to_decimal(ln.get("Amount"), "Amount") or Decimal(0) for ln in credit_lines),
                 Decimal(0))  # fmt: skip
    invoice_lines = [line for line in current.get("Line") or [] if line not in credit_lines]
    target = str(body.get("invoice_id") or "")
    if not target:
        links = [lk for ln in invoice_lines for lk in ln.get("LinkedTxn") or []]
        target = str(links[0]["TxnId"]) if links else ""
    lines = list(credit_lines)
    if target:
        invoice = qb.ops.read(w, "Invoice", target)
        before = sum(
            (to_decimal(ln.get("Amount"), "Amount") or Decimal(0))
            for ln in invoice_lines
            if any(lk.get("TxnId") == target for lk in ln.get("LinkedTxn") or [])
        )
        room = (to_decimal(invoice.get("Balance"), "Balance") or Decimal(0)) + before
        applied = min(total + credit, room)
        if applied > 0:
            lines.append(
                {"Amount": applied, "LinkedTxn": [{"TxnId": target, "TxnType": "Invoice"}]}
            )
    full = {k: v for k, v in current.items() if k not in ("Line", "TotalAmt", "UnappliedAmt")}
    return qb.ops.update(w, "Payment", {**full, "TotalAmt": total, "Line": lines})


def _apply_credit_memo(qb: QuickBooksSandbox, w: Write, body: dict[str, Any]) -> dict[str, Any]:
    """A credit memo for ``amount`` (item ``item_id``, default Services) applied to
    ``invoice_id`` through a zero-amount Payment linking both — how QuickBooks applies
    credit (Breadwinner, "Applying Credit to an Invoice": "create a zero-dollar payment,
    which is the link between the Credit Memo and the Invoice")."""
    invoice = qb.ops.read(w, "Invoice", str(body.get("invoice_id", "")))
    value = to_decimal(body.get("amount"), "amount")
    if value is None or value <= 0:
        raise QboFault("2020", "Required param missing", "amount must be a positive decimal")
    customer = {"value": ref_value(invoice["CustomerRef"])}
    memo_body: dict[str, Any] = {
        "CustomerRef": customer,
        "CurrencyRef": invoice.get("CurrencyRef"),
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": value,
                "SalesItemLineDetail": {"ItemRef": {"value": str(body.get("item_id") or "1")}},
            }
        ],
    }
    if invoice.get("ExchangeRate") is not None:
        memo_body["ExchangeRate"] = invoice["ExchangeRate"]
    memo = qb.ops.create(w, "CreditMemo", memo_body)
    balance = to_decimal(invoice.get("Balance"), "Balance") or Decimal(0)
    applied = min(value, balance)
    payment_body: dict[str, Any] = {
        "CustomerRef": customer,
        "TotalAmt": Decimal(0),
        "CurrencyRef": invoice.get("CurrencyRef"),
        "Line": [
            {"Amount": applied, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]},
            {"Amount": applied, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]},
        ],
    }
    if invoice.get("ExchangeRate") is not None:
        payment_body["ExchangeRate"] = invoice["ExchangeRate"]
    payment = qb.ops.create(w, "Payment", payment_body)
    return {"CreditMemo": qb.ops.read(w, "CreditMemo", memo["Id"]), "Payment": payment}


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = jsonutil.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _bad(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)
