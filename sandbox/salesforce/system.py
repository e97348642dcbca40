"""The Salesforce stand-in as a `SandboxSystem`: wiring, state, names and limits.

Options read from `context.options` (all optional):
- `salesforce_daily_api_max` (100000): the daily API allocation;
- `salesforce_session_timeout_s` (7200): session timeout after the last use;
- `salesforce_child_page_size` (200): children per subquery result before a child
  `nextRecordsUrl`;
- `salesforce_multi_currency` (true): whether CurrencyIsoCode exists;
- `salesforce_max_open_cursors` (10): open query cursors per user;
- `rate_limits` == "off": the daily allocation is counted but not enforced until the
  admin API sets one.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from billsync.sandbox.core import FaultKind, RateLimit, SandboxContext
from billsync.sandbox.salesforce import ids, seeding
from billsync.sandbox.salesforce.admin import VERSION, Admin
from billsync.sandbox.salesforce.api import ALL_METHODS, DataApi
from billsync.sandbox.salesforce.collections import Collections
from billsync.sandbox.salesforce.cursors import Cursors
from billsync.sandbox.salesforce.errors import SalesforceError, error_response, not_found
from billsync.sandbox.salesforce.oauth import OAuth, Sessions
from billsync.sandbox.salesforce.render import full_record
from billsync.sandbox.salesforce.schema import Schema
from billsync.sandbox.salesforce.store import Store
from billsync.sandbox.salesforce.usage import DEFAULT_DAILY_MAX, ApiUsage

API_VERSION = VERSION


class SalesforceSandbox:
    name = "salesforce"

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        options = context.options
        self.multi_currency = bool(options.get("salesforce_multi_currency", True))
        self.store = Store(Schema(self.multi_currency), context.clock)
        self.usage = ApiUsage(
            context.clock,
            int(options.get("salesforce_daily_api_max", DEFAULT_DAILY_MAX)),
            enforce=options.get("rate_limits") != "off",
        )
        self.child_page = int(options.get("salesforce_child_page_size", 200))
        self.session_timeout = timedelta(
            seconds=int(options.get("salesforce_session_timeout_s", 7200))
        )
        self.cursors = Cursors(
            self.store,
            context.clock,
            child_page=self.child_page,
            max_open=int(options.get("salesforce_max_open_cursors", 10)),
        )
        # Sessions survive `reset` (a running client keeps its token), records do not.
        self.sessions = Sessions(context.clock, self.session_timeout)
        ca_bundle = options.get("ca_bundle")
        key_dir = Path(ca_bundle).parent if ca_bundle else Path(tempfile.mkdtemp())
        self.oauth = OAuth(context.clock, self.sessions, context.base_url, key_dir)
        self.api = DataApi(
            self.store, self.cursors, self.sessions, self.usage, self.oauth, Collections(self.store)
        )
        self.admin = Admin(self.store, self.sessions, self.usage, self.cursors)

    def routes(self) -> list[BaseRoute]:
        async def unknown(request: Request) -> Response:
            return error_response(not_found())

        return [*self.api.routes(), Route("/{path:path}", unknown, methods=ALL_METHODS)]

    def admin_routes(self) -> list[BaseRoute]:
        return self.admin.routes()

    def seed(self, data: dict[str, Any]) -> None:
        seeding.seed(self.store, data)

    def reset(self) -> None:
        self.store.schema = Schema(self.multi_currency)
        self.store.reset()
        self.cursors.reset()
        self.cursors.child_page = self.child_page
        self.sessions.timeout = self.session_timeout
        self.usage.reset()

    def snapshot(self) -> dict[str, Any]:
        """Every record (deleted ones flagged IsDeleted), numbers as exact Decimals."""
        return {
            definition.name: [
                full_record(definition, record, API_VERSION)
                for record in self.store.tables[definition.name].values()
            ]
            for definition in self.store.schema.objects.values()
        }

    def endpoint_name(self, method: str, path: str) -> str:
        path = path.rstrip("/")
        if path == "/services/oauth2/token":
            return f"{method} oauth2/token"
        if path == "/services/data":
            return f"{method} versions"
        parts = path.split("/")
        if len(parts) < 4 or parts[:3] != ["", "services", "data"]:
            return f"{method} {path}"
        rest = parts[4:]
        if not rest:
            return f"{method} resources"
        if rest[0] in ("query", "queryAll") and len(rest) == 2:
            return f"{method} {rest[0]}/{{locator}}"
        if rest[0] == "sobjects" and len(rest) == 3 and ids.is_well_formed(rest[2]):
            return f"{method} sobjects/{rest[1]}/{{id}}"
        return f"{method} {'/'.join(rest)}"

    def error_response(self, kind: FaultKind, retry_after_s: int | None) -> Response:
        # Salesforce sends no Retry-After on either.
        if kind == "rate_limited":
            error = SalesforceError(
                403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."
            )
        else:
            error = SalesforceError(
                503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, please try again."
            )
        return error_response(error)

    def rate_limits(self) -> list[RateLimit]:
        # Salesforce caps concurrent requests that run 20 s or longer at 25 per org;
        # the sandbox's requests are short, so this caps all in-flight requests at 25.
        return [RateLimit("concurrent-long-running", limit=25, window_s=20.0, concurrent=True)]

    def ready_info(self) -> dict[str, str]:
        return {
            "salesforce_client_id": self.oauth.client_id,
            "salesforce_client_secret": self.oauth.client_secret,
            "salesforce_username": self.oauth.username,
            "salesforce_private_key_file": str(self.oauth.private_key_file),
            "salesforce_token_url": f"{self.context.base_url}/services/oauth2/token",
        }

    def config_section(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "auth": "client_credentials",
            "instance_url": self.context.base_url,
            "login_url": self.context.base_url,
            "api_version": API_VERSION,
            "client_id": self.oauth.client_id,
            "client_secret": self.oauth.client_secret,
            "username": self.oauth.username,
            "private_key_file": str(self.oauth.private_key_file),
            "ca_bundle": self.context.options.get("ca_bundle"),
        }
