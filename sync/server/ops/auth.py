"""Who may use /ops and /api: the ops token, and the browser session it buys.

- ``/api/…`` takes ``Authorization: Bearer <token>`` on every request; the actor in
  the audit trail is ``ops-api``.
- ``/ops/…`` pages take a session cookie set by the login form once the token was
  typed in. The cookie holds a random session id, its issue time and an HMAC of both
  under a key derived from the token — never the token, nor anything it can be
  recovered from. HttpOnly, SameSite=Strict, path /ops, Secure on https (or as
  configured), 12 hours. The audit trail names the session: ``ops-web:<id>``.

Sessions are stateless, so several uvicorn workers accept each other's cookies.
Signing out deletes the cookie in that browser; changing the token ends every
session at once (the key changes with it).

Every comparison with the token or a signature is `hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response
from pydantic import SecretStr

from sync.server.ops.context import OpsContext
from sync.server.ops.errors import OpsOff, Unauthorized

SESSION_COOKIE = "billsync_ops_session"
COOKIE_PATH = "/ops"
SESSION_TTL = timedelta(hours=12)
API_ACTOR = "ops-api"
_KEY_LABEL = b"billsync ops signing key v1"


def token_matches(presented: str, token: SecretStr) -> bool:
    """Constant-time: the time taken says nothing about how much of the token matched."""
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), token.get_secret_value().encode()
    )


class Signer:
    """HMAC-SHA256 signatures under a key derived from the ops token, one purpose per
    use (session, csrf, login, flash) so a signature made for one is no good for another."""

    def __init__(self, token: SecretStr) -> None:
        self._key = hmac.new(token.get_secret_value().encode(), _KEY_LABEL, hashlib.sha256).digest()

    def sign(self, purpose: str, value: str) -> str:
        mac = hmac.new(self._key, f"{purpose}|{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def verify(self, purpose: str, value: str, signature: str) -> bool:
        return hmac.compare_digest(
            self.sign(purpose, value).encode(), signature.encode("utf-8", "surrogatepass")
        )


@dataclass(frozen=True)
class Session:
    sid: str
    issued: int
    """Seconds since the epoch, by the server's clock."""

    @property
    def actor(self) -> str:
        return f"ops-web:{self.sid}"


def enabled_token(ctx: OpsContext) -> SecretStr:
    if ctx.token is None or not ctx.token.get_secret_value():
        raise OpsOff()
    return ctx.token


def api_actor(ctx: OpsContext, authorization: str | None) -> str:
    """The actor of an API request, or Unauthorized (OpsOff when no token is set)."""
    token = enabled_token(ctx)
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token_matches(presented.strip(), token):
        raise Unauthorized()
    return API_ACTOR


def new_session(signer: Signer, now: datetime) -> tuple[Session, str]:
    """A fresh session and its cookie value."""
    session = Session(sid=secrets.token_urlsafe(12), issued=int(now.timestamp()))
    body = f"{session.sid}.{session.issued}"
    return session, f"{body}.{signer.sign('session', body)}"


def read_session(signer: Signer, value: str | None, now: datetime) -> Session | None:
    """The session a cookie value proves, or None (absent, forged, expired)."""
    if not value:
        return None
    sid, _, rest = value.partition(".")
    issued_text, _, signature = rest.partition(".")
    if not (sid and issued_text.isdigit() and signature):
        return None
    if not signer.verify("session", f"{sid}.{issued_text}", signature):
        return None
    issued = int(issued_text)
    age = now.timestamp() - issued
    if age < -60 or age > SESSION_TTL.total_seconds():  # a minute of clock skew
        return None
    return Session(sid, issued)


def session_of(ctx: OpsContext, request: Request) -> Session | None:
    token = enabled_token(ctx)
    return read_session(Signer(token), request.cookies.get(SESSION_COOKIE), ctx.clock())


def is_secure(ctx: OpsContext, request: Request) -> bool:
    return ctx.secure_cookie if ctx.secure_cookie is not None else request.url.scheme == "https"


def set_cookie(
    response: Response,
    ctx: OpsContext,
    request: Request,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = COOKIE_PATH,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=is_secure(ctx, request),
    )


def clear_cookie(
    response: Response, ctx: OpsContext, request: Request, name: str, path: str = COOKIE_PATH
) -> None:
    response.delete_cookie(
        name, path=path, httponly=True, samesite="strict", secure=is_secure(ctx, request)
    )


def start_session(response: Response, ctx: OpsContext, request: Request) -> Session:
    session, value = new_session(Signer(enabled_token(ctx)), ctx.clock())
    max_age = int(SESSION_TTL.total_seconds())
    set_cookie(response, ctx, request, SESSION_COOKIE, value, max_age=max_age)
    return session
