"""Intuit OAuth 2.0: discovery, authorize, token (with refresh-token rotation), revoke.

Rotation: every refresh answers a NEW refresh token and a new access token. The
superseded refresh token keeps working for a grace period (`refresh_grace_s`, 60 s by
default, measured on the sandbox clock) and then fails with 400 invalid_grant. Intuit's
own rule is looser: the previous token stays valid until its successor is first used;
`refresh_grace_s = None` switches to that rule. A short grace is the default because
it is what catches a connector that forgets to store the rotated token.

Revoking (the endpoint or the admin route) disconnects the whole grant: every refresh
and access token issued from the same authorization stops working.

One app connects to several companies: each realm has its own grant and so its own
bootstrap refresh token, and an access token opens only its own realm's API.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from billsync.sandbox import jsonutil
from billsync.sandbox.core import Clock

ACCESS_TTL_S = 3600
REFRESH_TTL_S = 8_726_400  # 101 days, what Intuit reports in x_refresh_token_expires_in
CODE_TTL_S = 300
DEFAULT_GRACE_S = 60
TOKEN_PATH = "/oauth2/v1/tokens/bearer"  # noqa: S105 (a URL path, not a secret)
REVOKE_PATH = "/v2/oauth2/tokens/revoke"


@dataclass
class Grant:
    id: str
    realm_id: str
    revoked: bool = False


@dataclass
class RefreshToken:
    value: str
    grant: Grant
    expires_at: datetime
    superseded_at: datetime | None = None
    successor: str | None = None
    used: bool = False


@dataclass
class AccessToken:
    value: str
    grant: Grant
    expires_at: datetime


@dataclass
class AuthCode:
    realm_id: str
    redirect_uri: str | None
    expires_at: datetime
    used: bool = False


class OAuthError(Exception):
    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


class OAuthServer:
    def __init__(
        self,
        clock: Clock,
        base_url: str,
        client_id: str,
        client_secret: str,
        realm_ids: list[str],
    ) -> None:
        self.clock = clock
        self.base_url = base_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.realm_id = realm_ids[0]  # the company the consent screen picks by default
        self.refresh_grace_s: int | None = DEFAULT_GRACE_S
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.codes: dict[str, AuthCode] = {}
        self.initial_refresh_tokens = {
            realm: self._issue_refresh(self._new_grant(realm)).value for realm in realm_ids
        }

    @property
    def initial_refresh_token(self) -> str:
        """The default realm's bootstrap refresh token."""
        return self.initial_refresh_tokens[self.realm_id]

    # --- tokens -------------------------------------------------------------------

    def _new_grant(self, realm_id: str) -> Grant:
        return Grant(secrets.token_hex(8), realm_id)

    def _issue_refresh(self, grant: Grant) -> RefreshToken:
        value = "AB11" + secrets.token_hex(24)
        token = RefreshToken(value, grant, self.clock.now() + timedelta(seconds=REFRESH_TTL_S))
        self.refresh_tokens[value] = token
        return token

    def _issue_pair(self, grant: Grant) -> dict[str, Any]:
        refresh = self._issue_refresh(grant)
        access = AccessToken(
            "eyJ" + secrets.token_urlsafe(48),
            grant,
            self.clock.now() + timedelta(seconds=ACCESS_TTL_S),
        )
        self.access_tokens[access.value] = access
        return {
            "token_type": "bearer",
            "access_token": access.value,
            "expires_in": ACCESS_TTL_S,
            "refresh_token": refresh.value,
            "x_refresh_token_expires_in": REFRESH_TTL_S,
        }

    def refresh(self, value: str) -> dict[str, Any]:
        now = self.clock.now()
        token = self.refresh_tokens.get(value)
        if token is None or token.grant.revoked or now >= token.expires_at:
            raise OAuthError("invalid_grant")
        if token.superseded_at is not None:
            if self.refresh_grace_s is None:
                successor = self.refresh_tokens.get(token.successor or "")
                if successor is not None and successor.used:
                    raise OAuthError("invalid_grant")
            elif now > token.superseded_at + timedelta(seconds=self.refresh_grace_s):
                raise OAuthError("invalid_grant")
        token.used = True
        pair = self._issue_pair(token.grant)
        if token.superseded_at is None:
            token.superseded_at = now
            token.successor = pair["refresh_token"]
        return pair

    def exchange_code(self, code: str, redirect_uri: str | None) -> dict[str, Any]:
        grant_code = self.codes.get(code)
        if grant_code is None or grant_code.used or self.clock.now() >= grant_code.expires_at:
            raise OAuthError("invalid_grant")
        if grant_code.redirect_uri and redirect_uri != grant_code.redirect_uri:
            raise OAuthError("invalid_grant")
        grant_code.used = True
        return self._issue_pair(self._new_grant(grant_code.realm_id))

    def mint_code(self, realm_id: str | None = None, redirect_uri: str | None = None) -> str:
        code = "AB" + secrets.token_hex(20)
        expires = self.clock.now() + timedelta(seconds=CODE_TTL_S)
        self.codes[code] = AuthCode(realm_id or self.realm_id, redirect_uri, expires)
        return code

    def authenticate(self, request: Request) -> AccessToken | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = self.access_tokens.get(value.strip())
        if token is None or token.grant.revoked or self.clock.now() >= token.expires_at:
            return None
        return token

    def revoke(self, value: str | None = None) -> int:
        """Revoke the grant behind a token (or every grant); returns how many."""
        grants = {t.grant.id: t.grant for t in self.refresh_tokens.values()}
        grants.update({t.grant.id: t.grant for t in self.access_tokens.values()})
        if value is not None:
            token = self.refresh_tokens.get(value) or self.access_tokens.get(value)
            grants = {token.grant.id: token.grant} if token else {}
        for grant in grants.values():
            grant.revoked = True
        return len(grants)

    def expire_access_tokens(self, value: str | None = None) -> int:
        now = self.clock.now()
        tokens = [self.access_tokens[value]] if value in self.access_tokens else []
        if value is None:
            tokens = list(self.access_tokens.values())
        for token in tokens:
            token.expires_at = min(token.expires_at, now)
        return len(tokens)

    def revive_initial_token(self) -> None:
        """On sandbox reset the configured bootstrap tokens work again, as new."""
        for value in self.initial_refresh_tokens.values():
            token = self.refresh_tokens[value]
            token.grant.revoked = False
            token.superseded_at = token.successor = None
            token.used = False
            token.expires_at = self.clock.now() + timedelta(seconds=REFRESH_TTL_S)

    # --- HTTP ---------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        base = self.base_url
        return {
            "issuer": f"{base}/op/v1",
            "authorization_endpoint": f"{base}/connect/oauth2",
            "token_endpoint": f"{base}{TOKEN_PATH}",
            "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
            "revocation_endpoint": f"{base}{REVOKE_PATH}",
            "jwks_uri": f"{base}/op/v1/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        }

    def routes(self) -> list[BaseRoute]:
        async def discovery(request: Request) -> Response:
            return JSONResponse(self.discovery())

        async def token(request: Request) -> Response:
            form = _form(await request.body())
            try:
                self._check_client(request, form)
                grant_type = form.get("grant_type")
                if grant_type == "refresh_token":
                    body = self.refresh(form.get("refresh_token", ""))
                elif grant_type == "authorization_code":
                    body = self.exchange_code(form.get("code", ""), form.get("redirect_uri"))
                else:
                    raise OAuthError("unsupported_grant_type")
            except OAuthError as exc:
                return _oauth_error(exc)
            return JSONResponse(body, headers={"Cache-Control": "no-store"})

        async def revoke(request: Request) -> Response:
            try:
                self._check_client(request, {})
            except OAuthError as exc:
                return _oauth_error(exc)
            raw = await request.body()
            try:
                value = str(jsonutil.loads(raw).get("token", "")) if raw else ""
            except (ValueError, AttributeError):
                value = _form(raw).get("token", "")
            if value:
                self.revoke(value)
            return Response(status_code=200)

        async def authorize(request: Request) -> Response:
            params = request.query_params
            if params.get("client_id") != self.client_id:
                return _oauth_error(OAuthError("invalid_client", 401))
            redirect_uri = params.get("redirect_uri")
            if not redirect_uri or params.get("response_type") != "code":
                return _oauth_error(OAuthError("invalid_request"))
            code = self.mint_code(self.realm_id, redirect_uri)
            query = {"code": code, "state": params.get("state", ""), "realmId": self.realm_id}
            separator = "&" if "?" in redirect_uri else "?"
            return RedirectResponse(f"{redirect_uri}{separator}{urlencode(query)}", 302)

        async def userinfo(request: Request) -> Response:
            if self.authenticate(request) is None:
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            return JSONResponse(
                {
                    "sub": "sandbox-user",
                    "email": "sandbox@example.invalid",
                    "emailVerified": True,
                    "givenName": "Sandbox",
                    "familyName": "User",
                }
            )

        async def jwks(request: Request) -> Response:
            return JSONResponse({"keys": []})

        routes: list[BaseRoute] = []
        for name in ("openid_sandbox_configuration", "openid_configuration"):
            # intuitlib asks for the URL with a trailing slash.
            routes.append(Route(f"/.well-known/{name}", discovery, methods=["GET"]))
            routes.append(Route(f"/.well-known/{name}/", discovery, methods=["GET"]))
        routes += [
            Route(TOKEN_PATH, token, methods=["POST"]),
            Route(REVOKE_PATH, revoke, methods=["POST"]),
            Route("/connect/oauth2", authorize, methods=["GET"]),
            Route("/v1/openid_connect/userinfo", userinfo, methods=["GET"]),
            Route("/op/v1/jwks", jwks, methods=["GET"]),
        ]
        return routes

    def _check_client(self, request: Request, form: dict[str, str]) -> None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", 401) from None
        if not (
            secrets.compare_digest(client_id or "", self.client_id)
            and secrets.compare_digest(secret or "", self.client_secret)
        ):
            raise OAuthError("invalid_client", 401)


def _form(raw: bytes) -> dict[str, str]:
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def _oauth_error(exc: OAuthError) -> Response:
    return JSONResponse({"error": exc.error}, status_code=exc.status)
