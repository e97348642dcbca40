"""Intuit's OAuth endpoints through intuitlib, without ever reaching Intuit by accident.

intuitlib's ``AuthClient`` fetches the OpenID discovery document in its constructor
(``intuitlib.utils.get_discovery_doc``, from ``intuitlib.config.DISCOVERY_URL`` unless
the "environment" is itself a URL). Here the document is fetched by us — from
``quickbooks.discovery_url`` when set (the sandbox, tests), else Intuit's own, with a
timeout and the configured CA bundle — and handed to the constructor by swapping
``intuitlib.client.get_discovery_doc`` for the moment of construction (serialised by a
lock). The client is built lazily: a run whose stored access token is still good never
builds one. intuitlib passes no timeout to its token calls; a mounted adapter adds one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import intuitlib.client
import requests
from intuitlib.client import AuthClient
from intuitlib.config import DISCOVERY_URL
from intuitlib.exceptions import AuthClientError

from billsync.connectors.quickbooks.errors import SYSTEM, oauth_error, transport_error
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.connectors.quickbooks.tokens import TokenSet
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = ["AuthGateway"]

Clock = Callable[[], datetime]
_CONSTRUCT = threading.Lock()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AuthGateway:
    """intuitlib's AuthClient, built lazily without reaching Intuit's discovery host."""

    def __init__(self, settings: QuickBooksSettings, *, clock: Clock = _utcnow) -> None:
        if not settings.client_id or settings.client_secret is None:
            raise ConnectorError(
                system=SYSTEM,
                error_class=ErrorClass.AUTH,
                message="set quickbooks.client_id and quickbooks.client_secret",
                code="CONFIG",
            )
        self.settings = settings
        self.clock = clock
        self._client: AuthClient | None = None

    def client(self) -> AuthClient:
        if self._client is None:
            self._client = self._build()
        return self._client

    def _build(self) -> AuthClient:
        settings = self.settings
        verify: bool | str = str(settings.ca_bundle) if settings.ca_bundle else True
        url = settings.discovery_url or DISCOVERY_URL[settings.environment]
        try:
            response = requests.get(url, timeout=settings.timeout_s, verify=verify)
        except requests.RequestException as exc:
            raise transport_error(exc) from None
        if response.status_code != 200:
            raise oauth_error(response.status_code, "discovery")
        document = response.json()
        secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
        # intuitlib.client calls get_discovery_doc(environment, session) from __init__;
        # hand it the document we fetched. The swap is brief and serialised.
        with _CONSTRUCT:
            original = intuitlib.client.get_discovery_doc
            intuitlib.client.get_discovery_doc = lambda *_a, **_k: document
            try:
                client = AuthClient(
                    settings.client_id,
                    secret,
                    settings.redirect_uri or "",
                    settings.environment,
                )
            finally:
                intuitlib.client.get_discovery_doc = original
        client.verify = verify
        client.mount("https://", _TimeoutAdapter(settings.timeout_s))
        client.mount("http://", _TimeoutAdapter(settings.timeout_s))
        return client

    def refresh(self, current: TokenSet) -> TokenSet:
        """Ask Intuit for a new pair (network). Raises ConnectorError."""
        client = self.client()
        self._token_call(lambda: client.refresh(refresh_token=current.refresh_token))
        return self._issued(client, current.connected_at)

    def exchange_code(self, code: str, realm_id: str) -> TokenSet:
        """The authorization-code grant of a (re)connection: a new grant, so the
        5-year cap starts again."""
        client = self.client()
        self._token_call(lambda: client.get_bearer_token(code, realm_id=realm_id))
        return self._issued(client, None)

    def authorization_url(self, state: str) -> str:
        from intuitlib.enums import Scopes

        return str(self.client().get_authorization_url([Scopes.ACCOUNTING], state_token=state))

    def _token_call(self, call: Callable[[], object]) -> None:
        try:
            call()
        except AuthClientError as exc:
            raise oauth_error(exc.status_code, _oauth_code(exc.response)) from None
        except requests.RequestException as exc:
            raise transport_error(exc) from None

    def _issued(self, client: AuthClient, connected_at: datetime | None) -> TokenSet:
        now = self.clock()
        return TokenSet(
            refresh_token=str(client.refresh_token),
            access_token=str(client.access_token),
            access_expires_at=now + timedelta(seconds=int(client.expires_in or 3600)),
            refresh_expires_at=(
                now + timedelta(seconds=int(client.x_refresh_token_expires_in))
                if client.x_refresh_token_expires_in
                else None
            ),
            refresh_issued_at=now,
            connected_at=connected_at or now,
        )


def _oauth_code(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error) if error else None


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """intuitlib passes no timeout; a hung token endpoint must not hang the run."""

    def __init__(self, timeout_s: int) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return super().send(
            request,
            stream=stream,
            timeout=self.timeout_s if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )
