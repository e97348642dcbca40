"""The web ops pages (``/ops``) and the ops JSON API (``/api``) of `billsync serve`.

Both sit on the same functions as the ops CLI (`billsync.sync.ops`): the failure log with retry
and resolve, discrepancies, runs and status, and the AR reports. Both are off — 404
with a sentence saying how to turn them on — until ``ops.token`` is configured.

- `auth`: the token, sessions, cookies; `csrf`: tokens on every form; `flash`: the
  message after a post; `errors`: refusals and how each is answered;
- `api` and `models`: the JSON routes and their documents;
- `login`, `pages`, `report_pages`, `templating`, `charts`, ``templates/``: the HTML.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from billsync.sync.server.ops.api import api_router
from billsync.sync.server.ops.context import OpsContext
from billsync.sync.server.ops.errors import OpsError, OpsOff, answer
from billsync.sync.server.ops.login import login_router
from billsync.sync.server.ops.pages import failures_router
from billsync.sync.server.ops.report_pages import reports_router
from billsync.sync.server.ops.templating import SECURITY_HEADERS, Pages

__all__ = ["OpsContext", "install_ops"]

TITLES = {401: "Not signed in", 403: "Refused", 404: "Not found", 409: "Not done"}


def install_ops(app: FastAPI, ctx: OpsContext) -> None:
    """Add the ops routes to ``app``, and the handler that answers their refusals."""
    pages = Pages(ctx)
    app.include_router(api_router(ctx))
    app.include_router(login_router(ctx, pages))
    app.include_router(failures_router(ctx, pages))
    app.include_router(reports_router(ctx, pages))

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OpsError)
        title = "The ops pages are off" if isinstance(exc, OpsOff) else TITLES.get(exc.status, "")

        def page() -> str:
            return pages.message(title, exc.message, exc.status)

        return answer(request, exc, page, SECURITY_HEADERS)

    app.add_exception_handler(OpsError, refused)
