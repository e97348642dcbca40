"""What every sandboxed vendor API provides, and what the sandbox frame gives it.

The frame (`billsync.sandbox.server`) binds the sockets, wraps each system's ASGI app in the
call counter, fault injection and rate limits (`billsync.sandbox.runtime`), serves the admin API
and sends webhooks. A system (`billsync.sandbox.salesforce`, `billsync.sandbox.quickbooks`,
`billsync.sandbox.stripe`) only knows its vendor: its routes, its state, its error shapes.

All handlers are `async def` and run on the one event loop, so system state needs no
locks: nothing else touches it concurrently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

FaultKind = Literal["rate_limited", "server_error"]
RateLimitMode = Literal["real", "off"] | float


@dataclass
class Clock:
    """The sandbox's notion of now; tests may move it forward (`POST /_sandbox/clock`)."""

    offset: timedelta = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass(frozen=True)
class RateLimit:
    """A vendor limit: at most `limit` requests per `window_s` seconds (or in flight).

    `key` splits the budget (e.g. per QuickBooks realm); `applies` narrows it to some
    endpoints (e.g. QuickBooks' 40 batch calls a minute).
    """

    name: str
    limit: int
    window_s: float
    concurrent: bool = False
    key: Callable[[Request], str] | None = None
    applies: Callable[[str, str], bool] | None = None
    retry_after_s: int | None = None


Signer = Callable[[bytes], dict[str, str]]
"""Returns the signature headers for a body; called again for every delivery attempt
(Stripe signs each attempt with a fresh timestamp)."""


class WebhookSink(Protocol):
    """Where systems hand webhooks to send (implemented by `billsync.sandbox.webhooks`).

    `provider` is the route: the billsync connection the sender stands in for ('stripe',
    'quickbooks', 'stripe_eu', …); the body goes to `<webhook_url>/webhooks/<provider>`.
    `ordered` deliveries on one route go out one at a time, each retried until
    acknowledged before the next (Intuit's rule); others are sent independently (Stripe's).
    """

    def deliver(
        self, provider: str, body: bytes, sign: Signer, *, ordered: bool = False
    ) -> None: ...


@dataclass
class SandboxContext:
    """What the frame gives each system when building it."""

    clock: Clock
    webhooks: WebhookSink
    base_url: str
    """This system's own base URL (e.g. for Salesforce's `nextRecordsUrl`)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Free-form knobs from the command line / admin API (e.g. search_delay_s)."""


class SandboxSystem(Protocol):
    """One vendor API stand-in."""

    name: str
    """'salesforce', 'quickbooks' or 'stripe': used in URLs, state and call counts."""

    def routes(self) -> list[BaseRoute]:
        """The vendor API routes, served at this system's base URL."""
        ...

    def admin_routes(self) -> list[BaseRoute]:
        """Admin routes, mounted at `/_sandbox/<name>` on the admin server."""
        ...

    def seed(self, data: dict[str, Any]) -> None:
        """Add records given in the vendor's own JSON shape (the seed file section)."""
        ...

    def reset(self) -> None:
        """Forget every record (fixtures built into the system may be re-created)."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """Every object, in vendor JSON shape, keyed by object type."""
        ...

    def endpoint_name(self, method: str, path: str) -> str:
        """A stable name for the call counter, with ids replaced, e.g. 'GET /query'."""
        ...

    def error_response(self, kind: FaultKind, retry_after_s: int | None) -> Response:
        """The vendor's own body and status for an injected 5xx or a rate limit."""
        ...

    def rate_limits(self) -> list[RateLimit]:
        """The vendor's limits at real scale."""
        ...

    def ready_info(self) -> dict[str, Any]:
        """Extra fields for the ready file (e.g. token_url, webhook secret)."""
        ...

    def config_section(self) -> dict[str, Any]:
        """The billsync config section that points a connector at this system (at its
        first company, when it serves several)."""
        ...


@runtime_checkable
class ServesCompanies(Protocol):
    """A system that can stand in for several companies (QuickBooks realms, Stripe
    accounts); the others serve one, written as the section named after the system."""

    def connection_sections(self) -> dict[str, dict[str, Any]]:
        """One config section per company, by billsync connection name (a single entry
        named after the system itself in the single-company profile)."""
        ...
