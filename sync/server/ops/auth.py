"""Who may use /ops and /api: the ops token, the browser session it buys, and the
limit on guessing it.

- ``/api/…`` takes ``Authorization: Bearer <token>`` on every request; the actor in
  the audit trail is ``ops-api``.
- ``/ops/…`` pages take a session cookie set by the login form once the token was
  typed in. The cookie holds only a random session id; the ledger keeps its SHA-256
  (`billsync.sync.ledger.ops_sessions`), so the session ends for real on logout, on an
  operator's `billsync ops sessions revoke`, after ``ops.session_idle_minutes`` without
  a request, and at the latest 12 hours after sign-in. HttpOnly, SameSite=Strict, path
  /ops, Secure on https (or as configured). The audit trail names the session by its
  label: ``ops-web:<first 12 hex digits of the hash>``.
- Every presented token goes through `admit`: the `throttle` may refuse it unread
  (429), and each refusal is counted (``billsync_ops_login_refusals_total``), logged
  and audited (``ops.login_refused``, subject ``ops-client:<address>``).

The token must be at least 32 characters (`token_problem`). Every comparison with the
token or a signature is `hmac.compare_digest`. Rotating the token does not end the
sessions it bought: run ``billsync ops sessions revoke --all`` afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from pydantic import SecretStr

from billsync.core.logs import get_logger
from billsync.sync.ledger.ops_sessions import SESSION_LIFETIME, session_label
from billsync.sync.server.ops.context import OpsContext
from billsync.sync.server.ops.errors import OpsOff, TooManyAttempts, Unauthorized
from billsync.sync.server.ops.throttle import Refusal

log = get_logger("billsync.server")

SESSION_COOKIE = "billsync_ops_session"
COOKIE_PATH = "/ops"
API_ACTOR = "ops-api"
LOGIN_ACTOR = "ops-login"
MIN_TOKEN_LENGTH = 32
MAKE_A_TOKEN = "make one with `openssl rand -hex 32`"  # noqa: S105 - advice, not a secret
_MAX_SID = 128


def token_problem(token: SecretStr | None) -> str | None:
    """Why ``token`` cannot turn the ops pages on, or None (unset is fine: they stay off)."""
    if token is None or not token.get_secret_value():
        return None
    if len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
        return (
            f"the ops token must be at least {MIN_TOKEN_LENGTH} characters "
            f"(this one has {len(token.get_secret_value())}); {MAKE_A_TOKEN}"
        )
    return None


def token_matches(presented: str, token: SecretStr) -> bool:
    """Constant-time: the time taken says nothing about how much of the token matched."""
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), token.get_secret_value().encode()
    )


def enabled_token(ctx: OpsContext) -> SecretStr:
    if ctx.token is None or not ctx.token.get_secret_value():
        raise OpsOff()
    return ctx.token


def client_of(request: Request) -> str:
    """The client's address (the proxy's X-Forwarded-For when uvicorn trusts it)."""
    return request.client.host if request.client else "unknown"


def admit(ctx: OpsContext, request: Request, presented: str, via: str) -> bool:
    """Whether ``presented`` is the ops token. Raises TooManyAttempts, without comparing
    it, while the client (or everyone) must wait; a wrong token is counted."""
    token = enabled_token(ctx)
    client, now = client_of(request), ctx.clock()
    wait = ctx.throttle.check(client, now)
    if wait is not None:
        _refused(ctx, client, wait.reason, via)
        raise TooManyAttempts(wait.retry_after(now))
    if token_matches(presented, token):
        ctx.throttle.succeeded(client)
        return True
    ctx.throttle.failed(client, now)
    _refused(ctx, client, Refusal.WRONG_TOKEN, via)
    return False


def _refused(ctx: OpsContext, client: str, reason: Refusal, via: str) -> None:
    ctx.on_login_refused(str(reason))
    log.warning("ops.login_refused", client=client, reason=str(reason), via=via)
    details = {"client": client, "reason": str(reason), "via": via}
    ctx.ledger.append_audit(LOGIN_ACTOR, "ops.login_refused", f"ops-client:{client}", details)


def api_actor(ctx: OpsContext, request: Request, authorization: str | None) -> str:
    """The actor of an API request, or Unauthorized (OpsOff when no token is set)."""
    enabled_token(ctx)
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not admit(ctx, request, presented.strip(), "api"):
        raise Unauthorized()
    return API_ACTOR


@dataclass(frozen=True)
class Session:
    id_hash: str
    """SHA-256 (hex) of the session id in the cookie: what the ledger keeps."""

    @property
    def label(self) -> str:
        return session_label(self.id_hash)

    @property
    def actor(self) -> str:
        return f"ops-web:{self.label}"


def hash_session_id(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


def session_of(ctx: OpsContext, request: Request) -> Session | None:
    """The live session the request's cookie names (now seen), or None."""
    enabled_token(ctx)
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid or len(sid) > _MAX_SID:
        return None
    id_hash = hash_session_id(sid)
    found = ctx.ledger.touch_ops_session(id_hash, idle=ctx.session_idle, lifetime=SESSION_LIFETIME)
    return None if found is None else Session(id_hash)


def start_session(response: Response, ctx: OpsContext, request: Request) -> Session:
    """A new server-side session (audited ``ops.login``) and its cookie."""
    sid = secrets.token_urlsafe(32)
    session = Session(hash_session_id(sid))
    ctx.ledger.create_ops_session(session.id_hash, session.actor, client_of(request))
    max_age = int(SESSION_LIFETIME.total_seconds())
    set_cookie(response, ctx, request, SESSION_COOKIE, sid, max_age=max_age)
    return session


def end_session(response: Response, ctx: OpsContext, request: Request, session: Session) -> None:
    """Logout: the ledger ends the session (audited ``ops.logout``), the cookie goes."""
    ctx.ledger.end_ops_session(session.id_hash, session.actor)
    clear_cookie(response, ctx, request, SESSION_COOKIE)


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
