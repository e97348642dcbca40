"""Stripe accounts: each its own secret key, objects, events, idempotency keys and webhooks.

Stripe scopes everything to the account a secret key belongs to:
- another account's object is `resource_missing` (404), as if it did not exist
  (https://docs.stripe.com/error-codes#resource-missing); object ids stay globally
  unique, custom ids (`prod_PLATSUB`) only per account;
- idempotency keys are remembered per account (https://docs.stripe.com/api/idempotent_requests);
- rate limits are counted per account (https://docs.stripe.com/rate-limits);
- webhook endpoints are configured per account, each with its own signing secret
  (https://docs.stripe.com/webhooks#verify-events).

A request is routed to the account whose key it presents; a missing or unknown key goes
to the first account, which refuses it exactly as Stripe does.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from starlette.routing import BaseRoute, Router
from starlette.types import Receive, Scope, Send

from billsync.sandbox.core import SandboxContext
from billsync.sandbox.profiles import Company
from billsync.sandbox.stripe.api import Api, presented_key
from billsync.sandbox.stripe.events import EventLog
from billsync.sandbox.stripe.idempotency import IdempotencyCache
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import StripeStore
from billsync.sandbox.stripe.wire import new_id

RoutesOf = Callable[[Api, State], list[BaseRoute]]


@dataclass
class Account:
    name: str
    """The billsync connection it stands in for; also its webhook route."""
    id: str
    api_key: str
    webhook_secret: str
    state: State
    idempotency: IdempotencyCache
    api: Api
    app: Router


def open_account(
    context: SandboxContext,
    company: Company,
    routes_of: RoutesOf,
    *,
    api_key: str | None = None,
    webhook_secret: str | None = None,
    search_delay_s: float,
) -> Account:
    key = api_key or "sk_test_" + new_id("", 32)
    secret = webhook_secret or "whsec_" + secrets.token_hex(24)
    store = StripeStore(context.clock, context.base_url)
    events = EventLog(context.clock, context.webhooks, secret, route=company.connection)
    state = State(store, events, search_delay_s)
    idempotency = IdempotencyCache()
    api = Api(store, key, idempotency)
    return Account(
        company.connection,
        new_id("acct_", 16),
        key,
        secret,
        state,
        idempotency,
        api,
        Router(routes=routes_of(api, state)),
    )


class Accounts:
    """The accounts in configuration order; the first is the default."""

    def __init__(self, accounts: list[Account]) -> None:
        self.by_name = {account.name: account for account in accounts}
        self.default = accounts[0]
        self._by_key = {account.api_key: account for account in accounts}

    def all(self) -> list[Account]:
        return list(self.by_name.values())

    def for_key(self, authorization: str) -> Account:
        return self._by_key.get(presented_key(authorization), self.default)

    def named(self, name: str | None) -> Account:
        if name is None:
            return self.default
        found = self.by_name.get(name)
        if found is None:
            raise ValueError(f"no stripe account {name!r}; accounts: {', '.join(self.by_name)}")
        return found

    def owner(self, object_id: str) -> Account | None:
        """The account holding an object with this id (ids are globally unique)."""
        for account in self.by_name.values():
            store = account.state.store
            if any(object_id in c.by_id for c in store.collections().values()):
                return account
        return None

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI: hand the request to the account whose secret key it presents."""
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        await self.for_key(authorization).app(scope, receive, send)
