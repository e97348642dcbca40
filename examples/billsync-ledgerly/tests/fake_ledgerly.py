"""A tiny fake of the Ledgerly HTTP API, for the example connector's tests.

Ledgerly is FICTIONAL: this fake *is* its specification. It runs a stdlib HTTP server on
127.0.0.1 (a free port) in a thread of the test process, and refuses, loudly, any
request it does not understand (`FakeLedgerly.unexpected`, which the tests check).

    POST /v1/sessions                 Bearer <API key> → {token, expires_at, key_expires_at}
    GET  /v1/catalog                  {items: [{code, name, active}], terms, currencies}
    GET  /v1/customers?external_ref=  {data: [...]}
    POST /v1/customers                Idempotency-Key
    POST /v1/invoices                 Idempotency-Key; lines' amounts and the total checked
    GET  /v1/invoices?reference=      the deal's invoices, oldest first
    GET  /v1/invoices?ids=a,b         those that exist
    GET  /v1/invoices/<id>            one, or 404 not_found
    GET  /v1/events?after=<seq>       events after seq, oldest first, ``next_after`` pages

Every call but the first carries ``Authorization: Bearer <session token>``. Errors are
``{"error": {"code", "message", "param"?}}``. Every event is also "sent" as a webhook:
signed (``Ledgerly-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")``) and kept in
``webhooks`` for the test to deliver.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "ly_test_" + "k" * 24
WEBHOOK_SECRET = "lywh_" + "s" * 24
CATALOG = {
    "PLAT-SUB": "Platform subscription (annual)",
    "SEAT-ANNUAL": "Additional seat (annual)",  # Salesforce calls it SEAT: mapped
    "ONBOARD": "Onboarding package",
    "TRAIN-HR": "Training (per hour)",
    "SUPPORT-PREM": "Premium support (annual)",
    "API-PACK": "API call pack (1M)",
    "STORAGE-TB": "Storage (per TB-month)",
    "CONSULT-DAY": "Consulting day",
    "HW-GATEWAY": "Gateway appliance",
    "LIC-ADDON": "Analytics add-on licence",
}
TERMS = ("Due on receipt", "Net 15", "Net 30", "Net 60")
DIGITS = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "JPY": 0}  # what Ledgerly bills in
PAGE = 100


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


def _now() -> datetime:
    return datetime.now(UTC)


class FakeLedgerly:
    """The fake's state, behind one lock; `url` once `running()`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.key_expires_at = _now() + timedelta(days=60)
            self.sessions: dict[str, datetime] = {}
            self.customers: list[dict[str, Any]] = []
            self.invoices: list[dict[str, Any]] = []
            self.events: list[dict[str, Any]] = []
            self.webhooks: list[tuple[bytes, dict[str, str]]] = []
            self.replies: dict[str, tuple[str, int, Any]] = {}
            self.unexpected: list[str] = []
            self.calls: list[str] = []
            self.fault: int | None = None
            self._ids = itertools.count(1)

    # --- what a test does out of band ------------------------------------------------

    def pay(self, invoice_id: str, amount: Decimal | None = None) -> dict[str, Any]:
        """A customer pays (the whole balance by default)."""
        with self.lock:
            invoice = self._invoice(invoice_id)
            paid = Decimal(invoice["balance"]) if amount is None else amount
            payment = {
                "id": f"pay_{next(self._ids):05d}",
                "amount": str(paid),
                "created_at": _now().isoformat(),
                "voided": False,
            }
            invoice["payments"].append(payment)
            self._settle(invoice)
            self._event(
                "payment.created",
                {"invoice": invoice_id, "payment": payment["id"], "amount": str(paid),
                 "currency": invoice["currency"]},
            )  # fmt: skip
            return payment

    def invoices_with_reference(self, reference: str) -> list[dict[str, Any]]:
        with self.lock:
            return [i for i in self.invoices if i["reference"] == reference]

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions = dict.fromkeys(self.sessions, _now() - timedelta(seconds=1))

    # --- the API -----------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Any:
        parts = urlsplit(target)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = json.loads(raw) if raw else {}
        with self.lock:
            self.calls.append(f"{method} {path}")
            if self.fault is not None:
                raise Refused(self.fault, "server_error", "Ledgerly is having a bad day")
            token = headers.get("authorization", "").removeprefix("Bearer ")
            if (method, path) == ("POST", "/v1/sessions"):
                return self._open_session(token)
            self._check_session(token)
            return self._route(method, path, query, body, headers.get("idempotency-key"))

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any, key: str | None
    ) -> Any:
        if (method, path) == ("GET", "/v1/catalog"):
            items = [{"code": c, "name": n, "active": True} for c, n in CATALOG.items()]
            return {"items": items, "terms": list(TERMS), "currencies": sorted(DIGITS)}
        if (method, path) == ("GET", "/v1/customers"):
            ref = query.get("external_ref")
            return {"data": [c for c in self.customers if c["external_ref"] == ref]}
        if method == "POST" and path in ("/v1/customers", "/v1/invoices"):
            return self._idempotent(path, body, key)
        if (method, path) == ("GET", "/v1/invoices") and "reference" in query:
            return {"data": self.invoices_with_reference(query["reference"]), "next_after": None}
        if (method, path) == ("GET", "/v1/invoices") and "ids" in query:
            wanted = set(query["ids"].split(","))
            return {"data": [i for i in self.invoices if i["id"] in wanted], "next_after": None}
        if method == "GET" and path.startswith("/v1/invoices/"):
            return self._invoice(path.rsplit("/", 1)[-1])
        if (method, path) == ("GET", "/v1/events"):
            after, limit = int(query.get("after", "0")), min(int(query.get("limit", PAGE)), PAGE)
            later = [e for e in self.events if e["seq"] > after]
            page = later[:limit]
            return {"data": page, "next_after": page[-1]["seq"] if len(later) > limit else None}
        self.unexpected.append(f"{method} {path}")
        raise Refused(400, "unsupported", f"the fake does not serve {method} {path}")

    def _open_session(self, key: str) -> Any:
        if not hmac.compare_digest(key, API_KEY):
            raise Refused(401, "invalid_api_key", "the API key is not valid")
        token = "lys_" + secrets.token_hex(16)
        self.sessions[token] = _now() + timedelta(hours=1)
        return {
            "token": token,
            "expires_at": self.sessions[token].isoformat(),
            "key_expires_at": self.key_expires_at.isoformat(),
        }

    def _check_session(self, token: str) -> None:
        expires = self.sessions.get(token)
        if expires is None and not token.startswith("lys_"):
            raise Refused(401, "invalid_api_key", "not a session token")
        if expires is None or expires <= _now():
            raise Refused(401, "session_expired", "the session has ended; open a new one")

    def _idempotent(self, path: str, body: Any, key: str | None) -> Any:
        """Same key and body: the first answer again. Same key, other body: 409."""
        if not key:
            raise Refused(400, "validation_error", "Idempotency-Key is required", "headers")
        fingerprint = hashlib.sha256(json.dumps([path, body], sort_keys=True).encode()).hexdigest()
        if key in self.replies:
            seen, _, reply = self.replies[key]
            if seen != fingerprint:
                raise Refused(409, "idempotency_conflict", "key reused with other parameters")
            return reply
        reply = self._create_customer(body) if path == "/v1/customers" else self._create(body)
        self.replies[key] = (fingerprint, 201, reply)
        return reply

    def _create_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        customer = {"id": f"cus_{next(self._ids):05d}", **body}
        self.customers.append(customer)
        return customer

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        currency = body["currency"]
        if currency not in DIGITS:
            raise Refused(422, "validation_error", f"cannot bill in {currency}", "currency")
        if not any(c["id"] == body["customer"] for c in self.customers):
            raise Refused(422, "validation_error", "no such customer", "customer")
        total = Decimal(0)
        for n, line in enumerate(body["lines"]):
            if line["catalog_code"] not in CATALOG:
                raise Refused(422, "unknown_catalog_code",
                              f"catalog code '{line['catalog_code']}' does not exist",
                              f"lines[{n}].catalog_code")  # fmt: skip
            exact = (Decimal(line["quantity"]) * Decimal(line["unit_price"])
                     * (100 - Decimal(line["discount_percent"])) / 100)  # fmt: skip
            amount = exact.quantize(Decimal(1).scaleb(-DIGITS[currency]), ROUND_HALF_UP)
            if amount != Decimal(line["amount"]):
                raise Refused(422, "validation_error", f"amount should be {amount}",
                              f"lines[{n}].amount")  # fmt: skip
            total += amount
        if total != Decimal(body["total"]):
            raise Refused(422, "validation_error", f"total should be {total}", "total")
        number = next(self._ids)
        invoice = {
            **body,
            "id": f"inv_{number:05d}",
            "number": f"LY-{number:05d}",
            "url": f"https://app.ledgerly.example/i/{number}",
            "status": "open",
            "total": str(total),
            "amount_paid": "0",
            "balance": str(total),
            "payments": [],
            "created_at": _now().isoformat(),
        }
        self.invoices.append(invoice)
        self._event("invoice.created", {"invoice": invoice["id"]})
        return invoice

    def _invoice(self, invoice_id: str) -> dict[str, Any]:
        found = next((i for i in self.invoices if i["id"] == invoice_id), None)
        if found is None:
            raise Refused(404, "not_found", f"no invoice {invoice_id}")
        return found

    def _settle(self, invoice: dict[str, Any]) -> None:
        paid = sum((Decimal(p["amount"]) for p in invoice["payments"] if not p["voided"]),
                   Decimal(0))  # fmt: skip
        balance = Decimal(invoice["total"]) - paid
        invoice.update(amount_paid=str(paid), balance=str(balance))
        invoice["status"] = "paid" if balance <= 0 else "partially_paid" if paid else "open"

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        seq = len(self.events) + 1
        event = {"id": f"evt_{seq:05d}", "seq": seq, "type": kind, "data": data,
                 "created_at": _now().isoformat()}  # fmt: skip
        self.events.append(event)
        body = json.dumps(event).encode()
        stamp = int(time.time())
        mac = hmac.new(WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        headers = {"Content-Type": "application/json",
                   "Ledgerly-Signature": f"t={stamp},v1={mac.hexdigest()}"}  # fmt: skip
        self.webhooks.append((body, headers))


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLedgerly

    def _serve(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, reply = 200, self.fake.handle(self.command, self.path, headers, raw)
            status = 201 if self.command == "POST" else 200
        except Refused as refused:
            error = {"code": refused.code, "message": refused.message}
            status, reply = (
                refused.status,
                {"error": error | ({"param": refused.param} if refused.param else {})},
            )
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest shows failures, not access logs


@contextmanager
def running(fake: FakeLedgerly) -> Iterator[FakeLedgerly]:
    """Serve ``fake`` on 127.0.0.1:<free port> for the block."""
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
