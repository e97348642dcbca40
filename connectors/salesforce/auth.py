"""Getting an access token: the JWT bearer flow and the client-credentials flow.

The token request is made here with `requests`, not with simple-salesforce's login
helpers: those build the login host as ``https://{domain}.salesforce.com`` and cannot
target a sandbox stand-in or an arbitrary login URL. simple-salesforce is then used in
its "direct" mode (instance URL + session id), which never renews a session by itself:
`client.py` calls `fetch()` again when Salesforce answers INVALID_SESSION_ID.

Neither grant returns a refresh token; renewing means asking again (a fresh JWT, or the
client credentials). Secrets (client secret, private key, access token) are kept in
attributes that no repr, str or exception shows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

from config.loader import ConfigError, ConfigProblem
from config.settings import SalesforceSettings

__all__ = [
    "JWT_GRANT",
    "AccessToken",
    "OAuthLogin",
    "TokenEndpointError",
    "audience",
    "check_settings",
]

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
