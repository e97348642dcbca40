"""`QuickBooksSandbox`: QuickBooks Online and Intuit OAuth, wired into the sandbox frame.

One company (realm) exists, with the fake app's client id/secret, a verifier token for
webhooks and a bootstrap refresh token (all in the ready file and `--config-out`).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from billsync.sandbox.core import FaultKind, RateLimit, SandboxContext
from billsync.sandbox.quickbooks.admin import admin_routes
from billsync.sandbox.quickbooks.api import AccountingApi, ForcedThrottle
from billsync.sandbox.quickbooks.errors import system_fault, throttled
from billsync.sandbox.quickbooks.fixtures import BUILT_IN, seed_realm
from billsync.sandbox.quickbooks.names import (
    AccountSpec,
    CustomerSpec,
    EmployeeSpec,
    ItemSpec,
    TaxCodeSpec,
    TaxRateSpec,
    TermSpec,
    VendorSpec,
)
from billsync.sandbox.quickbooks.notify import Notifier
from billsync.sandbox.quickbooks.oauth import TOKEN_PATH, OAuthServer
from billsync.sandbox.quickbooks.operations import Operations
from billsync.sandbox.quickbooks.payments import PaymentSpec
from billsync.sandbox.quickbooks.sales import CreditMemoSpec, InvoiceSpec
from billsync.sandbox.quickbooks.spec import Spec
from billsync.sandbox.quickbooks.store import ENTITIES, Realm

DEFAULT_REALM_ID = "9341453050298475"
CLIENT_ID = "ABsandboxQuickBooksClientId0000000000000000000000"
CLIENT_SECRET = "sandbox-quickbooks-client-secret-0000000000"  # noqa: S105 (fake, public)
VERIFIER_TOKEN = "sandbox-intuit-verifier-token-0000"  # noqa: S105 (fake, public)
REDIRECT_URI = "http://127.0.0.1/callback"
MINOR_VERSION = 75
_API_PATH = re.compile(r"^/v3/company/(?P<realm>[^/]+)/(?P<rest>.*)$")


def _specs() -> dict[str, Spec]:
    specs: list[Spec] = [
        CustomerSpec(),
        VendorSpec(),
        EmployeeSpec(),
        ItemSpec(),
        AccountSpec(),
        TermSpec(),
        TaxRateSpec(),
        TaxCodeSpec(),
        InvoiceSpec(),
        CreditMemoSpec(),
        PaymentSpec(),
    ]
    return {spec.entity: spec for spec in specs}


def _realm_of(request: Request) -> str:
    match = _API_PATH.match(request.url.path)
    return match.group("realm") if match else ""


class QuickBooksSandbox:
    name = "quickbooks"

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self.clock = context.clock
        self.realm_id = str(context.options.get("quickbooks_realm_id") or DEFAULT_REALM_ID)
        self.ops = Operations(_specs())
        self.oauth = OAuthServer(
            self.clock, context.base_url, CLIENT_ID, CLIENT_SECRET, self.realm_id
        )
        self.notifier = Notifier(context.webhooks, VERIFIER_TOKEN, "sandbox-app")
        self.throttle = ForcedThrottle()
        self.realms: dict[str, Realm] = {}
        self._new_realm()
        self.api = AccountingApi(
            self.clock, self.realms, self.oauth, self.ops, self.notifier, self.throttle
        )

    def _new_realm(self) -> None:
        realm = Realm(self.realm_id)
        self.realms.clear()
        self.realms[self.realm_id] = realm
        seed_realm(self.ops, realm, self.clock.now(), BUILT_IN)

    def realm(self, realm_id: Any) -> Realm:
        return self.realms.get(str(realm_id or self.realm_id)) or self.realms[self.realm_id]

    # --- SandboxSystem ------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [*self.oauth.routes(), *self.api.routes()]

    def admin_routes(self) -> list[BaseRoute]:
        return admin_routes(self)

    def seed(self, data: dict[str, Any]) -> None:
        seed_realm(self.ops, self.realm(data.get("realm_id")), self.clock.now(), _without(data))

    def reset(self) -> None:
        """Forget every record (the built-in accounts, terms, tax codes and items come
        back). Issued tokens stay valid and the bootstrap refresh token works again."""
        self._new_realm()
        self.api.realms = self.realms
        self.throttle.remaining = 0
        self.oauth.revive_initial_token()

    def snapshot(self) -> dict[str, Any]:
        realm = self.realms[self.realm_id]
        return {entity: list(realm.records[entity].values()) for entity in ENTITIES}

    def endpoint_name(self, method: str, path: str) -> str:
        match = _API_PATH.match(path)
        if match is None:
            return f"{method} {path.lstrip('/').rstrip('/')}"
        parts = match.group("rest").strip("/").split("/")
        parts[0] = parts[0].lower()
        if len(parts) > 1:
            parts[1] = "{id}"
        return f"{method} {'/'.join(parts)}"

    def error_response(self, kind: FaultKind, retry_after_s: int | None) -> Response:
        now = self.clock.now()
        if kind == "rate_limited":
            return throttled(now)
        return system_fault(now)

    def rate_limits(self) -> list[RateLimit]:
        def api(method: str, path: str) -> bool:
            return path.startswith("/v3/company/")

        def batch(method: str, path: str) -> bool:
            return api(method, path) and path.rstrip("/").endswith("/batch")

        # api-facts §2.7 / §2.5: per realm; QBO says to wait 60 s after a 429.
        return [
            RateLimit("per-minute", 500, 60.0, key=_realm_of, applies=api, retry_after_s=60),
            RateLimit("concurrent", 10, 0.0, concurrent=True, key=_realm_of, applies=api),
            RateLimit("batch-per-minute", 40, 60.0, key=_realm_of, applies=batch, retry_after_s=60),
        ]

    def ready_info(self) -> dict[str, str]:
        return {
            "token_url": f"{self.context.base_url}{TOKEN_PATH}",
            "quickbooks_verifier_token": VERIFIER_TOKEN,
            "quickbooks_realm_id": self.realm_id,
            "quickbooks_client_id": CLIENT_ID,
            "quickbooks_client_secret": CLIENT_SECRET,
            "quickbooks_refresh_token": self.oauth.initial_refresh_token,
            "quickbooks_discovery_url": self._discovery_url(),
        }

    def config_section(self) -> dict[str, Any]:
        base = self.context.base_url
        section: dict[str, Any] = {
            "enabled": True,
            "environment": "sandbox",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "realm_id": self.realm_id,
            "redirect_uri": REDIRECT_URI,
            "refresh_token": self.oauth.initial_refresh_token,
            # python-quickbooks builds f"{sandbox_api_url_v3}/company/{realm}/{entity}".
            "base_url": f"{base}/v3",
            "discovery_url": self._discovery_url(),
            "verifier_token": VERIFIER_TOKEN,
            "minorversion": MINOR_VERSION,
            "home_currency": self.realms[self.realm_id].preferences.home_currency,
        }
        ca_bundle = self.context.options.get("ca_bundle")
        if base.startswith("https://") and ca_bundle:
            section["ca_bundle"] = ca_bundle
        return section

    def _discovery_url(self) -> str:
        return f"{self.context.base_url}/.well-known/openid_sandbox_configuration"


def _without(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "realm_id"}
