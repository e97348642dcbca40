"""`QuickBooksSandbox`: QuickBooks Online and Intuit OAuth, wired into the sandbox frame.

One Intuit app (client id/secret, webhook verifier token) connected to one company
(realm), or to several with the `multi` profile; each realm has its own preferences
(home currency), records, id sequences, CDC and bootstrap refresh token (all in the
ready file and `--config-out`). The app's webhooks go to one URL for all its realms.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from billsync.sandbox.core import FaultKind, RateLimit, SandboxContext
from billsync.sandbox.profiles import SINGLE, Company, Profile
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
from billsync.sandbox.quickbooks.store import ENTITIES, Preferences, Realm

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
        profile: Profile = context.options.get("profile") or SINGLE
        first = str(context.options.get("quickbooks_realm_id") or "")
        self.companies: dict[str, Company] = {}
        for index, company in enumerate(profile.quickbooks):
            realm_id = (first if index == 0 else "") or company.realm_id or DEFAULT_REALM_ID
            self.companies[realm_id] = company
        self.realm_id = next(iter(self.companies))  # the default realm
        self._ids_by_name = {c.connection: realm_id for realm_id, c in self.companies.items()}
        self.ops = Operations(_specs())
        self.oauth = OAuthServer(
            self.clock, context.base_url, CLIENT_ID, CLIENT_SECRET, list(self.companies)
        )
        # One app, so one webhook endpoint: named after the app's first company.
        route = profile.quickbooks[0].connection
        self.notifier = Notifier(context.webhooks, VERIFIER_TOKEN, "sandbox-app", route)
        self.throttle = ForcedThrottle()
        self.realms: dict[str, Realm] = {}
        self._new_realms()
        self.api = AccountingApi(
            self.clock, self.realms, self.oauth, self.ops, self.notifier, self.throttle
        )

    def _new_realms(self) -> None:
        self.realms.clear()
        for realm_id, company in self.companies.items():
            realm = Realm(realm_id, _preferences(company))
            self.realms[realm_id] = realm
            seed_realm(self.ops, realm, self.clock.now(), BUILT_IN)

    def realm_id_of(self, key: Any) -> str:
        """A realm id given an id or a connection name (None: the default realm)."""
        text = str(key or self.realm_id)
        return self._ids_by_name.get(text, text)

    def realm(self, key: Any) -> Realm:
        """A realm by id or connection name; the default one when None or unknown."""
        return self.realms.get(self.realm_id_of(key)) or self.realms[self.realm_id]

    # --- SandboxSystem ------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [*self.oauth.routes(), *self.api.routes()]

    def admin_routes(self) -> list[BaseRoute]:
        return admin_routes(self)

    def seed(self, data: dict[str, Any]) -> None:
        """The section seeds its `realm_id` (default: the first realm); `realms: {realm id
        or connection name: section}` seeds several companies at once."""
        for key, section in (data.get("realms") or {}).items():
            realm = self.realms.get(self.realm_id_of(key))
            if realm is None:
                raise ValueError(f"no quickbooks realm {key!r}; realms: {', '.join(self.realms)}")
            seed_realm(self.ops, realm, self.clock.now(), section)
        rest = {k: v for k, v in data.items() if k not in ("realm_id", "realms")}
        seed_realm(self.ops, self.realm(data.get("realm_id")), self.clock.now(), rest)

    def reset(self) -> None:
        """Forget every record (the built-in accounts, terms, tax codes and items come
        back). Issued tokens stay valid and the bootstrap refresh tokens work again."""
        self._new_realms()
        self.api.realms = self.realms
        self.throttle.remaining = 0
        self.notifier.discard()
        self.oauth.revive_initial_token()

    def snapshot(self) -> dict[str, Any]:
        """The default realm's records at the top (as always); with several realms,
        `realms` also holds each one (the default included) by realm id."""
        result: dict[str, Any] = _records(self.realms[self.realm_id])
        if len(self.realms) > 1:
            result["realms"] = {realm_id: _records(r) for realm_id, r in self.realms.items()}
        return result

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

    def ready_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "token_url": f"{self.context.base_url}{TOKEN_PATH}",
            "quickbooks_verifier_token": VERIFIER_TOKEN,
            "quickbooks_realm_id": self.realm_id,
            "quickbooks_client_id": CLIENT_ID,
            "quickbooks_client_secret": CLIENT_SECRET,
            "quickbooks_refresh_token": self.oauth.initial_refresh_token,
            "quickbooks_discovery_url": self._discovery_url(),
        }
        if len(self.realms) > 1:
            info["quickbooks_realms"] = {
                company.connection: {
                    "realm_id": realm_id,
                    "refresh_token": self.oauth.initial_refresh_tokens[realm_id],
                    "home_currency": self.realms[realm_id].preferences.home_currency,
                }
                for realm_id, company in self.companies.items()
            }
        return info

    def config_section(self) -> dict[str, Any]:
        return self._section(self.realm_id)

    def connection_sections(self) -> dict[str, dict[str, Any]]:
        return {c.connection: self._section(realm_id) for realm_id, c in self.companies.items()}

    def _section(self, realm_id: str) -> dict[str, Any]:
        base = self.context.base_url
        section: dict[str, Any] = {
            "enabled": True,
            "environment": "sandbox",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "realm_id": realm_id,
            "redirect_uri": REDIRECT_URI,
            "refresh_token": self.oauth.initial_refresh_tokens[realm_id],
            # python-quickbooks builds f"{sandbox_api_url_v3}/company/{realm}/{entity}".
            "base_url": f"{base}/v3",
            "discovery_url": self._discovery_url(),
            "verifier_token": VERIFIER_TOKEN,
            "minorversion": MINOR_VERSION,
            "home_currency": self.realms[realm_id].preferences.home_currency,
        }
        ca_bundle = self.context.options.get("ca_bundle")
        if base.startswith("https://") and ca_bundle:
            section["ca_bundle"] = ca_bundle
        return section

    def _discovery_url(self) -> str:
        return f"{self.context.base_url}/.well-known/openid_sandbox_configuration"


def _records(realm: Realm) -> dict[str, Any]:
    return {entity: list(realm.records[entity].values()) for entity in ENTITIES}


def _preferences(company: Company) -> Preferences:
    # A new QBO company's preferences; multi-currency is on so a UK company can bill
    # in EUR or USD as well as its GBP home currency.
    preferences = Preferences(home_currency=company.home_currency)
    if company.company_name:
        preferences.company_name = company.company_name
    return preferences
