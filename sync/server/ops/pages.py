"""The failures pages: the list with its filters, one failure in full, and the Retry
and Resolve buttons.

Buttons post a form with the session's CSRF token, act through `billsync.sync.ops.failures`
(the same functions as `billsync failures retry|resolve`, audited as
``ops-web:<session>``) and redirect back with a flash message saying what happened.
Bad filter values are shown as a sentence above the table, never as an error page.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run
# time, and they use aliases local to the router factory.

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from billsync.core.protocols import ErrorClass
from billsync.sync.ledger.ops_reads import FailureView
from billsync.sync.ops.failures import (
    FailureQuery,
    UnknownFailure,
    list_failures,
    resolve_failures,
    retry_failures,
    show_failure,
)
from billsync.sync.server.ops import csrf
from billsync.sync.server.ops.auth import Session, session_of
from billsync.sync.server.ops.context import OpsContext
from billsync.sync.server.ops.errors import LoginRequired, NotFound, safe_next
from billsync.sync.server.ops.templating import Pages
from billsync.sync.server.ops.views import parse_since, plain

LIST_LIMIT = 500
CLASSES = [str(c) for c in ErrorClass]


def session_dependency(ctx: OpsContext) -> Callable[[Request], Session]:
    """A FastAPI dependency: the request's session, or a redirect to the login form."""

    def require(request: Request) -> Session:
        session = session_of(ctx, request)
        if session is None:
            if request.method != "GET":  # a form posted after the session ended
                raise LoginRequired("/ops/failures")
            query = request.url.query
            raise LoginRequired(request.url.path + (f"?{query}" if query else ""))
        return session

    return require


def _item_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 15:
        raise NotFound(f"There is no failure with id {text}.")
    return int(text)


def failures_router(ctx: OpsContext, pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    SessionDep = Annotated[Session, Depends(session_dependency(ctx))]
    CsrfField = Annotated[str, Form(alias=csrf.FIELD)]

    @router.get("/ops/failures")
    def failures_page(
        request: Request,
        session: SessionDep,
        status: str = "open",
        connection: str = "",
        target: str = "",
        error_class: Annotated[str, Query(alias="class")] = "",
        since: str = "",
    ) -> Response:
        problems = []
        try:
            view = FailureView(status)
        except ValueError:
            problems.append(f"'{status}' is not a status; choose open, dead, resolved or all.")
            view = FailureView.OPEN
        try:
            moment = parse_since(since.strip())
        except ValueError as exc:
            problems.append(f"Active since: {exc}; the filter was left out.")
            moment = None
        # ``target``: the filter's name before connections; old bookmarks keep working.
        chosen = (connection or target).strip()
        known = ctx.known()
        query = FailureQuery(view, chosen or None, error_class or None, moment, LIST_LIMIT)
        rows = [row.as_json() for row in list_failures(ctx.ledger, query, connections=known)]
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return pages.page(
            request,
            "failures.html",
            session=session,
            active="failures",
            rows=rows,
            truncated=len(rows) == LIST_LIMIT,
            filters={
                "status": view.value,
                "connection": chosen,
                "error_class": error_class,
                "since": since,
            },
            views=[v.value for v in FailureView],
            connections=known.billing(),
            classes=CLASSES,
            error=" ".join(problems) or None,
            back=here,
        )

    @router.get("/ops/failures/{item_id}")
    def failure_page(request: Request, session: SessionDep, item_id: str) -> Response:
        number = _item_id(item_id)
        try:
            detail = show_failure(ctx.ledger, number, connections=ctx.known())
        except UnknownFailure:
            raise NotFound(
                f"There is no failure with id {number}: it may have succeeded since "
                "(a retried item that worked leaves the failure log), or the id is wrong."
            ) from None
        return pages.page(
            request, "failure.html", session=session, active="failures", f=plain(detail.as_json())
        )

    def back_to(next_path: str, number: int | None) -> RedirectResponse:
        default = f"/ops/failures/{number}" if number is not None else "/ops/failures"
        return RedirectResponse(safe_next(next_path, default), status_code=303)

    @router.post("/ops/failures/{item_id}/retry")
    def retry(
        request: Request,
        session: SessionDep,
        item_id: str,
        csrf_token: CsrfField = "",
        next_path: Annotated[str, Form(alias="next")] = "",
    ) -> Response:
        csrf.check_session_token(ctx.signer, session, csrf_token)
        number = _item_id(item_id)
        response = back_to(next_path, number)
        try:
            [outcome] = retry_failures(ctx.ledger, [number], session.actor)
        except UnknownFailure as exc:
            pages.set_flash(response, request, "error", f"Nothing retried: {exc}.")
            return response
        if outcome.done:
            text = (
                f"Failure {number} is queued for the next run ({outcome.status_before} → "
                f"{outcome.status_after}, attempts reset)."
            )
            pages.set_flash(response, request, "ok", text)
        else:
            text = f"Failure {number} was not retried: {outcome.reason}."
            pages.set_flash(response, request, "error", text)
        return response

    @router.post("/ops/failures/{item_id}/resolve")
    def resolve(
        request: Request,
        session: SessionDep,
        item_id: str,
        csrf_token: CsrfField = "",
        note: Annotated[str, Form(max_length=2000)] = "",
        next_path: Annotated[str, Form(alias="next")] = "",
    ) -> Response:
        csrf.check_session_token(ctx.signer, session, csrf_token)
        number = _item_id(item_id)
        response = back_to(next_path, number)
        if not note.strip():
            pages.set_flash(response, request, "error", "Resolving needs a note saying why.")
            return response
        try:
            [outcome] = resolve_failures(ctx.ledger, [number], session.actor, note.strip())
        except UnknownFailure as exc:
            pages.set_flash(response, request, "error", f"Nothing resolved: {exc}.")
            return response
        if outcome.done:
            pages.set_flash(response, request, "ok", f"Failure {number} is resolved.")
        else:
            text = f"Failure {number} was not resolved: {outcome.reason}."
            pages.set_flash(response, request, "error", text)
        return response

    return router
