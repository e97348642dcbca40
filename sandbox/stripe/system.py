"""`StripeSandbox`: the Stripe stand-in the sandbox frame loads.

Served over plain HTTP at `context.base_url`; point stripe-python 16 at it with
`StripeClient(api_key, base_addresses={"api": base_url})`.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from billsync.sandbox.core import FaultKind, RateLimit, SandboxContext
from billsync.sandbox.profiles import SINGLE, Profile
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
    seeding,
    tax,
)
from billsync.sandbox.stripe.accounts import Account, Accounts, open_account
from billsync.sandbox.stripe.api import Api, RawJSON
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Obj
from billsync.sandbox.stripe.wire import dumps, new_id

DEFAULT_SEARCH_DELAY_S = 1.0
# Path segments that are names, not ids, in /v1/<collection>/<id>/<action>/<sub-id>.
_NOT_IDS = frozenset({"search"})
_ID = re.compile(r"^[A-Za-z0-9_]+$")


def api_routes(api: Api, state: State) -> list[BaseRoute]:
    """One account's API: every route runs against that account's objects."""
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
        api.route("GET", "/v1/events/{id}", lambda call: _raw(state.events.retrieve(call.id()))),
        api.not_found_route(),
    ]


class StripeSandbox:
    name = "stripe"

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        options = context.options
        profile: Profile = options.get("profile") or SINGLE
        delay = float(options.get("search_delay_s", DEFAULT_SEARCH_DELAY_S))  # money-ok: seconds
        opened = []
        for index, company in enumerate(profile.stripe):
            # --stripe-api-key style overrides name the first (default) account only.
            first = index == 0
            account = open_account(
                context,
                company,
                api_routes,
                api_key=str(options.get("stripe_api_key") or "") if first else None,
                webhook_secret=str(options.get("stripe_webhook_secret") or "") if first else None,
                search_delay_s=delay,
            )
            account.state.email_finalized_invoices = bool(
                options.get("email_finalized_invoices", True)
            )
            opened.append(account)
        self.accounts = Accounts(opened)
        # The default account, as single-account callers have always used it.
        default = self.accounts.default
        self.api_key, self.webhook_secret = default.api_key, default.webhook_secret
        self.state, self.idempotency, self.api = default.state, default.idempotency, default.api

    # -- SandboxSystem -------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/i/{id}", self._hosted_invoice, methods=["GET"]),
            Route("/i/{id}/pdf", self._hosted_invoice, methods=["GET"]),
            Mount("", app=self.accounts.dispatch),
        ]

    def admin_routes(self) -> list[BaseRoute]:
        return admin.routes(self.accounts)

    def seed(self, data: dict[str, Any]) -> None:
        """The section's records go to the default account; `accounts: {name: section}`
        to the others (each account holds its own catalogue)."""
        per_account = data.get("accounts") or {}
        for name, section in per_account.items():
            seeding.seed(self.accounts.named(name).state, section)
        seeding.seed(self.state, {k: v for k, v in data.items() if k != "accounts"})

    def reset(self) -> None:
        for account in self.accounts.all():
            account.state.clear()
            account.idempotency.clear()

    def snapshot(self) -> dict[str, Any]:
        """The default account's objects at the top (as always); with several accounts,
        `accounts` also holds each one (the default included) by name."""
        result = seeding.snapshot(self.state)
        accounts = self.accounts.all()
        if len(accounts) > 1:
            result["accounts"] = {a.name: seeding.snapshot(a.state) for a in accounts}
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
        # api-facts §3.9: 25 requests/s in test mode; search 20 reads/s. Both are counted
        # per account (https://docs.stripe.com/rate-limits), so each key has its budget.
        def account(request: Request) -> str:
            return self.accounts.for_key(request.headers.get("authorization", "")).name

        return [
            RateLimit(
                "stripe-test-mode",
                limit=25,
                window_s=1.0,
                key=account,
                applies=lambda method, path: path.startswith("/v1/"),
            ),
            RateLimit(
                "stripe-search",
                limit=20,
                window_s=1.0,
                key=account,
                applies=lambda method, path: path.endswith("/search"),
            ),
        ]

    def ready_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "stripe_api_key": self.api_key,
            "stripe_webhook_secret": self.webhook_secret,
        }
        if len(self.accounts.by_name) > 1:
            info["stripe_accounts"] = {
                a.name: {"id": a.id, "api_key": a.api_key, "webhook_secret": a.webhook_secret}
                for a in self.accounts.all()
            }
        return info

    def config_section(self) -> dict[str, Any]:
        return self._section(self.accounts.default)

    def connection_sections(self) -> dict[str, dict[str, Any]]:
        return {a.name: self._section(a) for a in self.accounts.all()}

    def _section(self, account: Account) -> dict[str, Any]:
        return {
            "enabled": True,
            "api_key": account.api_key,
            "base_url": self.context.base_url,
            "webhook_secrets": [account.webhook_secret],
        }

    # -- helpers -------------------------------------------------------------------------

    async def _hosted_invoice(self, request: Request) -> Response:
        """A stand-in for invoice.stripe.com so `hosted_invoice_url` links lead somewhere."""
        # Hosted pages need no key; invoice ids are unique across accounts.
        owner = self.accounts.owner(request.path_params["id"]) or self.accounts.default
        store = owner.state.store
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
