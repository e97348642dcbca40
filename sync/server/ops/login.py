"""The login form, signing out, and ``/ops`` itself.

A wrong token answers 401 with the form again (the token typed is never echoed back
into the page); too many wrong ones answer 429 with the form, saying how long to wait
(`throttle`), without looking at the token typed. The right one starts a server-side
session (`auth.start_session`) and goes back to the page that asked for it. Signing
out ends the session in the ledger, not only in this browser.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run
# time, and they use aliases local to the router factory.

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from billsync.core.logs import get_logger
from billsync.sync.server.ops import csrf
from billsync.sync.server.ops.auth import (
    admit,
    clear_cookie,
    enabled_token,
    end_session,
    session_of,
    set_cookie,
    start_session,
)
from billsync.sync.server.ops.context import OpsContext
from billsync.sync.server.ops.errors import LOGIN_PATH, TooManyAttempts, login_redirect, safe_next
from billsync.sync.server.ops.templating import Pages

log = get_logger("billsync.server")

REFUSED = "That is not the ops token. It is the value of ops.token in billsync's configuration."


def _wait_sentence(seconds: int) -> str:
    return f"Too many wrong tokens. Try again in {seconds} s; nothing typed before then is checked."


def login_router(ctx: OpsContext, pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def form(request: Request, next_path: str, error: str | None, status: int) -> Response:
        enabled_token(ctx)
        nonce = csrf.new_login_nonce()
        response = pages.page(
            request,
            "login.html",
            session=None,
            status_code=status,
            login_token=csrf.login_token(ctx.signer, nonce),
            next_path=safe_next(next_path),
            error=error,
        )
        set_cookie(
            response,
            ctx,
            request,
            csrf.LOGIN_COOKIE,
            nonce,
            max_age=csrf.LOGIN_NONCE_TTL_S,
            path=csrf.LOGIN_COOKIE_PATH,
        )
        return response

    @router.get("/ops")
    def ops_root() -> RedirectResponse:
        enabled_token(ctx)
        return RedirectResponse("/ops/failures", status_code=303)

    @router.get(LOGIN_PATH)
    def login_form(
        request: Request, next_path: Annotated[str, Query(alias="next")] = ""
    ) -> Response:
        if session_of(ctx, request) is not None:
            return RedirectResponse(safe_next(next_path), status_code=303)
        return form(request, next_path, None, 200)

    @router.post(LOGIN_PATH)
    def login(
        request: Request,
        token: Annotated[str, Form(max_length=4096)] = "",
        csrf_token: Annotated[str, Form(max_length=256)] = "",
        next_path: Annotated[str, Form(alias="next", max_length=2048)] = "",
    ) -> Response:
        enabled_token(ctx)
        csrf.check_login_token(ctx.signer, request.cookies.get(csrf.LOGIN_COOKIE), csrf_token)
        try:
            right = admit(ctx, request, token, "form")
        except TooManyAttempts as wait:
            response = form(request, next_path, _wait_sentence(wait.retry_after), 429)
            response.headers["Retry-After"] = str(wait.retry_after)
            return response
        if not right:
            return form(request, next_path, REFUSED, 401)
        response = RedirectResponse(safe_next(next_path), status_code=303)
        session = start_session(response, ctx, request)
        clear_cookie(response, ctx, request, csrf.LOGIN_COOKIE, path=csrf.LOGIN_COOKIE_PATH)
        log.info("ops.login", actor=session.actor)
        return response

    @router.post("/ops/logout")
    def logout(request: Request, csrf_token: Annotated[str, Form(max_length=256)] = "") -> Response:
        session = session_of(ctx, request)
        if session is None:
            return login_redirect("/ops/failures")
        csrf.check_session_token(ctx.signer, session, csrf_token)
        response = RedirectResponse(LOGIN_PATH, status_code=303)
        end_session(response, ctx, request, session)
        pages.set_flash(response, request, "ok", "Signed out.")
        log.info("ops.logout", actor=session.actor)
        return response

    return router
