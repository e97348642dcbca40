"""The refusals of the ops pages and API, and how each is answered.

Routes and dependencies raise these; `install_ops` registers one handler that answers
``/api/…`` with JSON (``{"error", "message"}``, the webhook receiver's `Problem`) and
``/ops/…`` with a short HTML page, or a redirect to the login form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from billsync.sync.server.ops.context import OFF_SENTENCE
from billsync.sync.server.webhooks import Problem

API_PREFIX = "/api/"
LOGIN_PATH = "/ops/login"


class OpsError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class OpsOff(OpsError):
    def __init__(self) -> None:
        super().__init__(404, "not_enabled", OFF_SENTENCE)


class Unauthorized(OpsError):
    def __init__(self) -> None:
        super().__init__(
            401,
            "unauthorized",
            "send the ops token as 'Authorization: Bearer <token>' (the value of ops.token)",
        )


class TooManyAttempts(OpsError):
    """Too many wrong tokens from this address (or from everyone): wait, then retry."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429,
            "too_many_attempts",
            f"too many wrong ops tokens; try again in {retry_after} s",
        )
        self.retry_after = retry_after


class LoginRequired(OpsError):
    """A page without a valid session: the browser goes to the login form and back."""

    def __init__(self, next_path: str) -> None:
        super().__init__(303, "login_required", "sign in with the ops token first")
        self.next_path = next_path


class CsrfRefused(OpsError):
    def __init__(self) -> None:
        super().__init__(
            403,
            "csrf",
            "the form was stale or did not come from this site; reload the page and try again",
        )


class NotFound(OpsError):
    def __init__(self, message: str) -> None:
        super().__init__(404, "not_found", message)


class Conflict(OpsError):
    def __init__(self, message: str) -> None:
        super().__init__(409, "conflict", message)


def login_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(next_path, safe='/')}", status_code=303)


def answer(
    request: Request, exc: OpsError, page: Callable[[], str], page_headers: Mapping[str, str]
) -> Response:
    """The response for ``exc``; ``page()`` and ``page_headers`` answer a page request
    (the caller renders them, so this module needs no templates)."""
    if request.url.path.startswith(API_PREFIX):
        headers = {"WWW-Authenticate": 'Bearer realm="billsync ops"'} if exc.status == 401 else {}
        if isinstance(exc, TooManyAttempts):
            headers["Retry-After"] = str(exc.retry_after)
        body = Problem(error=exc.error, message=exc.message).model_dump()
        return JSONResponse(body, status_code=exc.status, headers=headers or None)
    if isinstance(exc, LoginRequired):
        return login_redirect(exc.next_path)
    headers = dict(page_headers)
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    return Response(
        page(), status_code=exc.status, media_type="text/html; charset=utf-8", headers=headers
    )


def safe_next(path: str | None, default: str = "/ops/failures") -> str:
    """Where to send the browser after a form: only a path of the ops pages, never
    another site (``//host``, ``/\\host`` and schemes are refused)."""
    if not path or not path.startswith("/ops") or path.startswith("//") or "\\" in path:
        return default
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or any(ord(c) < 0x20 for c in path):
        return default
    return path
