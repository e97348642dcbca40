"""Getting an access token: the JWT bearer flow and the client-credentials flow.

The token request is made here with `requests`, not with simple-salesforce's login
helpers: those build the login host as ``https://{domain}.salesforce.com`` and cannot
target a sandbox stand-in or an arbitrary login URL. simple-salesforce is then used in
its "direct" mode (instance URL + session id), which never renews a session by itself:
`client.py` calls `fetch()` again when Salesforce answers INVALID_SESSION_ID.

Neither grant returns a refresh token; renewing means asking again (a fresh JWT, or the
client credentials). Secrets (client secret, private key, access token) are kept in
attributes that no repr, str or exception shows.

`StoredSession` keeps the access token in the ledger's credential store so the next
run (another process, another worker) reuses it instead of logging in again: one call
fewer on every run, where an idle run makes three in all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

from billsync.connectors.salesforce.settings import SalesforceSettings
from billsync.core.logs import get_logger
from billsync.core.problems import ConfigError, ConfigProblem
from billsync.core.protocols import CredentialStore

__all__ = [
    "JWT_GRANT",
    "AccessToken",
    "OAuthLogin",
    "StoredSession",
    "TokenEndpointError",
    "audience",
    "check_settings",
]

log = get_logger("billsync.salesforce")

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce checks exp against its clock; a short life limits the harm of a leaked
# assertion (simple-salesforce uses 3 minutes too).
JWT_LIFETIME = timedelta(minutes=3)


class AccessToken:
    """A session id and the instance it belongs to. The token never appears in repr."""

    __slots__ = ("_value", "instance_url")

    def __init__(self, value: str, instance_url: str) -> None:
        self._value = value
        self.instance_url = instance_url

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"AccessToken(instance_url={self.instance_url!r}, value='**********')"


class TokenEndpointError(Exception):
    """The token endpoint refused (``error`` is the OAuth error code, e.g. invalid_grant).

    ``description`` is Salesforce's own text ("user hasn't approved this consumer"),
    which names no secret.
    """

    def __init__(self, *, status: int, error: str, description: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description

    def __str__(self) -> str:
        return f"{self.error}: {self.description} (HTTP {self.status})"


def check_settings(settings: SalesforceSettings) -> None:
    """Raise ConfigError naming every key the chosen flow needs but lacks.

    Settings alone cannot require these (Salesforce is enabled by default, and a default
    config must load), so the connector checks them when it is built, before any call.
    """
    problems: list[ConfigProblem] = []

    def need(key: str, reason: str) -> None:
        problems.append(ConfigProblem("config", f"salesforce.{key}", reason))

    flow = f"required when salesforce.auth is {settings.auth}"
    if not settings.client_id:
        need("client_id", f"{flow} (the connected app's consumer key)")
    if settings.auth == "jwt":
        if not settings.username:
            need("username", flow)
        if settings.private_key_file is None:
            need("private_key_file", flow)
        elif not Path(settings.private_key_file).is_file():
            need("private_key_file", "no such file")
        if not settings.login_url.startswith("https://"):
            need("login_url", "must be an https:// URL")
    elif not settings.instance_url:
        need("instance_url", f"{flow} (your My Domain URL)")
    if settings.instance_url and not settings.instance_url.startswith("https://"):
        need("instance_url", "must be an https:// URL (simple-salesforce forces https)")
    if problems:
        raise ConfigError(problems)


def audience(login_url: str) -> str:
    """The JWT ``aud``: the login URL's origin, e.g. https://test.salesforce.com."""
    parts = urlsplit(login_url)
    return f"{parts.scheme}://{parts.netloc}"


class OAuthLogin:
    """Fetches access tokens for the configured flow."""

    def __init__(
        self,
        settings: SalesforceSettings,
        session: requests.Session,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._session = session
        self._now = now or (lambda: datetime.now(UTC))
        self._private_key: str | None = None
        if settings.auth == "jwt" and settings.private_key_file is not None:
            # Read once at start-up so a missing or unreadable key file is a config error
            # before any work starts, not a failure in the middle of a run.
            try:
                self._private_key = Path(settings.private_key_file).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                problem = f"cannot read the key file ({type(exc).__name__})"
                raise ConfigError(
                    [ConfigProblem("config", "salesforce.private_key_file", problem)]
                ) from None

    def __repr__(self) -> str:
        return f"OAuthLogin(auth={self._settings.auth!r}, client_id={self._settings.client_id!r})"

    @property
    def token_url(self) -> str:
        if self._settings.auth == "jwt":
            base = self._settings.login_url
        else:
            # Client credentials only works against the org's My Domain host.
            base = self._settings.instance_url or ""
        return base.rstrip("/") + "/services/oauth2/token"

    @property
    def credential_name(self) -> str:
        """The credentials row for sessions of this login (`StoredSession`).

        A digest of the flow, consumer key, user, token URL and the secret itself (client
        secret or private key): another org, user or app gets its own row, and rotating
        the secret or key stops the reuse of sessions obtained with the old one at once.
        A 64-bit digest of high-entropy secrets gives nothing away, and it fits the column.
        """
        secret = self._private_key or ""
        if self._settings.auth == "client_credentials" and self._settings.client_secret:
            secret = self._settings.client_secret.get_secret_value()
        parts = (self._settings.auth, self._settings.client_id or "", self._settings.username or "")
        login = "\n".join((*parts, self.token_url, secret))
        return "salesforce:session:" + hashlib.sha256(login.encode()).hexdigest()[:16]

    def assertion(self) -> str:
        """A signed RS256 JWT for the bearer flow (iss, sub, aud, exp)."""
        if self._private_key is None:
            raise ValueError("salesforce.private_key_file is not configured")
        now = self._now()
        claims = {
            "iss": self._settings.client_id,
            "sub": self._settings.username,
            "aud": audience(self._settings.login_url),
            "exp": int((now + JWT_LIFETIME).timestamp()),
        }
        return jwt.encode(claims, self._private_key, algorithm="RS256")

    def fetch(self, *, timeout: int) -> AccessToken:
        """POST to the token endpoint; TokenEndpointError or a requests exception on failure."""
        data: dict[str, str]
        auth: tuple[str, str] | None = None
        if self._settings.auth == "jwt":
            data = {"grant_type": JWT_GRANT, "assertion": self.assertion()}
        else:
            secret = self._settings.client_secret
            data = {"grant_type": "client_credentials"}
            auth = (self._settings.client_id or "", secret.get_secret_value() if secret else "")
        response = self._session.post(
            self.token_url,
            data=data,
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
        body = _json_object(response)
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise TokenEndpointError(
                status=response.status_code,
                error=str(body.get("error") or f"http_{response.status_code}"),
                description=str(body.get("error_description") or "no description")[:300],
            )
        instance_url = body.get("instance_url") or self._settings.instance_url
        if not isinstance(instance_url, str) or not instance_url:
            raise TokenEndpointError(
                status=response.status_code,
                error="no_instance_url",
                description="the token response named no instance_url; set salesforce.instance_url",
            )
        return AccessToken(body["access_token"], instance_url)


class StoredSession:
    """The access token kept across runs in the ledger (``CredentialStore``).

    Salesforce sessions do not rotate and any number may be live at once, so unlike
    QuickBooks' refresh tokens there is nothing to lose by two processes logging in
    together: no refresher lease. Saves are still compare-and-swap on the version last
    seen, so a process never overwrites a session stored after the one it read; when
    it loses that race it keeps its own (equally valid) session for this run.

    Salesforce ends a session after the org's inactivity timeout (2 h by default, set
    per org) and on an admin's or the user's revocation; billsync learns of either only
    from a refused call (INVALID_SESSION_ID), then logs in once and retries
    (`SalesforceClient`). ``salesforce.session_reuse_s`` caps how long after issue a
    stored session is reused — it bounds what a copy of the ledger is worth — and 0
    turns reuse off (log in every run, store nothing).
    """

    def __init__(
        self,
        store: CredentialStore,
        name: str,
        *,
        reuse: timedelta,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self.name = name  # `OAuthLogin.credential_name`
        self._reuse = reuse
        self._now = now or (lambda: datetime.now(UTC))
        self._version: int | None = None

    def __repr__(self) -> str:
        return f"StoredSession(name={self.name!r}, version={self._version!r})"

    def load(self) -> AccessToken | None:
        """The stored session if it is young enough to reuse, else None."""
        loaded = self._store.load(self.name)
        if loaded is None:
            return None
        data, self._version = loaded
        try:
            age = self._now() - datetime.fromisoformat(str(data["issued_at"]))
            token = AccessToken(str(data["access_token"]), str(data["instance_url"]))
        except (KeyError, TypeError, ValueError):
            return None  # unreadable: log in and overwrite it
        return token if timedelta(0) <= age < self._reuse else None

    def save(self, token: AccessToken) -> None:
        data = {
            "access_token": token.reveal(),
            "instance_url": token.instance_url,
            "issued_at": self._now().astimezone(UTC).isoformat(),
        }
        if self._store.save(self.name, data, self._version):
            self._version = 1 if self._version is None else self._version + 1
            return
        # Another process stored a session since we read: leave theirs (it is as good)
        # and remember its version, so a later renewal of ours can replace it.
        loaded = self._store.load(self.name)
        self._version = None if loaded is None else loaded[1]
        log.info("salesforce.session_save_lost_race")


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    if isinstance(body, list) and body and isinstance(body[0], dict):
        # A refusal in Salesforce's REST error shape ([{errorCode, message}], e.g.
        # REQUEST_LIMIT_EXCEEDED): its code says more than the status (a 403 is not
        # always wrong credentials), so read it as the OAuth error it stands for.
        first = body[0]
        return {"error": first.get("errorCode"), "error_description": first.get("message")}
    return body if isinstance(body, dict) else {}
