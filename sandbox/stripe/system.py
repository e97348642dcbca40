"""`StripeSandbox`: the Stripe stand-in the sandbox frame loads.

Served over plain HTTP at `context.base_url`; point stripe-python 16 at it with
`StripeClient(api_key, base_addresses={"api": base_url})`.
"""

from __future__ import annotations

import json
import re
import secrets
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from billsync.sandbox.core import FaultKind, RateLimit, SandboxContext
from billsync.sandbox.stripe import (
    admin,
    catalog,
    coupons,
    credit_notes,
    customers,
    errors,
    invoice_items,
    invoices,
    lifecycle,
    payment_routes,
    tax,
)
from billsync.sandbox.stripe.api import Api, RawJSON
from billsync.sandbox.stripe.events import EventLog
from billsync.sandbox.stripe.idempotency import IdempotencyCache
from billsync.sandbox.stripe.params import Params
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import OUT_OF_BAND, Obj, StripeStore
from billsync.sandbox.stripe.views import invoice as invoice_view
from billsync.sandbox.stripe.wire import dumps, new_id

DEFAULT_SEARCH_DELAY_S = 1.0
# Path segments that are names, not ids, in /v1/<collection>/<id>/<action>/<sub-id>.
_NOT_IDS = frozenset({"search"})
_ID = re.compile(r"^[A-Za-z0-9_]+$")
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


class StripeSandbox:
    name = "stripe"

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        options = context.options
        self.api_key = str(options.get("stripe_api_key") or "sk_test_" + new_id("", 32))
        self.webhook_secret = str(
            options.get("stripe_webhook_secret") or "whsec_" + secrets.token_hex(24)
        )
        store = StripeStore(context.clock, context.base_url)
        events = EventLog(context.clock, context.webhooks, self.webhook_secret)
        delay = float(options.get("search_delay_s", DEFAULT_SEARCH_DELAY_S))  # money-ok: seconds
        self.state = State(store, events, delay)
        self.state.email_finalized_invoices = bool(options.get("email_finalized_invoices", True))
        self.idempotency = IdempotencyCache()
        self.api = Api(store, self.api_key, self.idempotency)

    # -- SandboxSystem -------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        api, state = self.api, self.state
        return [
            *customers.routes(api, state),
            *catalog.routes(api, state),
            *coupons.routes(api, state),
            *invoice_items.routes(api, state),
            *invoices.routes(api, state),
            *lifecycle.routes(api, state),
            *payment_routes.routes(api, state),
            *credit_notes.routes(api, state),
            *tax.routes(api, state),
            api.route("GET", "/v1/events", lambda call: _raw(state.events.list(call.params))),
            api.route(
                "GET", "/v1/events/{id}", lambda call: _raw(state.events.retrieve(call.id()))
            ),
            Route("/i/{id}", self._hosted_invoice, methods=["GET"]),
            Route("/i/{id}/pdf", self._hosted_invoice, methods=["GET"]),
            api.not_found_route(),
        ]

    def admin_routes(self) -> list[BaseRoute]:
        return admin.routes(self.state)

    def seed(self, data: dict[str, Any]) -> None:
        unknown = set(data) - {"customers", "products", "prices", "coupons"}
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
                    make(self.state, Params(fields), OUT_OF_BAND, seeded=True)
                except errors.StripeError as exc:
                    raise ValueError(f"stripe.{section}[{index}]: {exc.message}") from None

    def reset(self) -> None:
        self.state.clear()
        self.idempotency.clear()

    def snapshot(self) -> dict[str, Any]:
        store = self.state.store
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
        result["events"] = len(self.state.events.ids)
        return result

    def endpoint_name(self, method: str, path: str) -> str:
        parts = path.strip("/").split("/")
        if parts and parts[0] == "v1":
            for position in (2, 4):
                if (
                    len(parts) > position
                    and parts[position] not in _NOT_IDS
                    and _ID.match(parts[position])
                ):
                    parts[position] = "{id}"
        elif parts and parts[0] == "i" and len(parts) > 1:
            parts[1] = "{id}"
        return f"{method} /{'/'.join(parts)}"

    def error_response(self, kind: FaultKind, retry_after_s: int | None) -> Response:
        error = errors.rate_limited() if kind == "rate_limited" else errors.server_error()
        request_id = new_id("req_", 14)
        headers = {"Request-Id": request_id, **error.headers}
        return Response(dumps(error.body(request_id)), error.status, headers, "application/json")

    def rate_limits(self) -> list[RateLimit]:
        # api-facts §3.9: 25 requests/s in test mode (global); search 20 reads/s.
        return [
            RateLimit(
                "stripe-test-mode",
                limit=25,
                window_s=1.0,
                applies=lambda method, path: path.startswith("/v1/"),
            ),
            RateLimit(
                "stripe-search",
                limit=20,
                window_s=1.0,
                applies=lambda method, path: path.endswith("/search"),
            ),
        ]

    def ready_info(self) -> dict[str, str]:
        return {"stripe_api_key": self.api_key, "stripe_webhook_secret": self.webhook_secret}

    def config_section(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "api_key": self.api_key,
            "base_url": self.context.base_url,
            "webhook_secrets": [self.webhook_secret],
        }

    # -- helpers -------------------------------------------------------------------------

    async def _hosted_invoice(self, request: Request) -> Response:
        """A stand-in for invoice.stripe.com so `hosted_invoice_url` links lead somewhere."""
        store = self.state.store
        inv: Obj | None = store.invoices.get(request.path_params["id"])
        if inv is None or inv["status"] == "draft":
            return HTMLResponse("<h1>Invoice not found</h1>", status_code=404)
        rows = "".join(
            f"<tr><td>{escape(line['description'] or '')}</td><td>{line['quantity']}</td>"
            f"<td>{line['amount']}</td></tr>"
            for line in store.lines.get(inv["id"], [])
        )
        return HTMLResponse(
            f"<h1>Invoice {escape(inv['number'] or '')}</h1><p>Status: {inv['status']}</p>"
            f"<table>{rows}</table><p>Amount due ({inv['currency'].upper()}, minor units): "
            f"{inv['amount_due']}; remaining: {inv['amount_remaining']}</p>"
        )


def _raw(text: str) -> RawJSON:
    return RawJSON(text)
