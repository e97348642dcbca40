"""The report pages: open discrepancies (with Acknowledge and Resolve, posted with the
session's CSRF token and audited as ``ops-web:<session>``), runs (with the rest of the
status), and the aging report with its chart."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run
# time, and they use aliases local to the router factory.

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from billsync.core.canonical import DiscrepancyKind
from billsync.sync.ops.aging import BUCKETS, aging
from billsync.sync.ops.discrepancies import (
    DiscrepancyClosed,
    UnknownDiscrepancy,
    acknowledge,
    resolve,
)
from billsync.sync.ops.status import RUN_COUNTS, build_status
from billsync.sync.server.ops import csrf
from billsync.sync.server.ops.auth import Session
from billsync.sync.server.ops.charts import aging_chart
from billsync.sync.server.ops.context import OpsContext
from billsync.sync.server.ops.pages import session_dependency
from billsync.sync.server.ops.templating import Pages
from billsync.sync.server.ops.views import open_discrepancies, parse_as_of, parse_currency, plain

RUNS_SHOWN = 20


def reports_router(ctx: OpsContext, pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    SessionDep = Annotated[Session, Depends(session_dependency(ctx))]

    @router.get("/ops/discrepancies")
    def discrepancies_page(request: Request, session: SessionDep, kind: str = "") -> Response:
        kinds = [k.value for k in DiscrepancyKind]
        chosen = kind if kind in kinds else ""
        return pages.page(
            request,
            "discrepancies.html",
            session=session,
            active="discrepancies",
            rows=open_discrepancies(ctx.ledger, chosen or None),
            kinds=kinds,
            kind=chosen,
        )

    @router.post("/ops/discrepancies/{item_id}/act")
    def discrepancy_action(
        request: Request,
        session: SessionDep,
        item_id: str,
        csrf_token: Annotated[str, Form(alias=csrf.FIELD)] = "",
        action: Annotated[str, Form()] = "",
        note: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        csrf.check_session_token(ctx.signer, session, csrf_token)
        response = RedirectResponse("/ops/discrepancies", status_code=303)
        acts = {"acknowledge": (acknowledge, "acknowledged"), "resolve": (resolve, "resolved")}
        if action not in acts or not (item_id.isascii() and item_id.isdigit()):
            pages.set_flash(response, request, "error", "Nothing was changed: unknown action.")
            return response
        if not note.strip():
            pages.set_flash(response, request, "error", "A note saying why is required.")
            return response
        act, done = acts[action]
        try:
            act(ctx.ledger, int(item_id), session.actor, note)
        except (UnknownDiscrepancy, DiscrepancyClosed) as exc:
            pages.set_flash(response, request, "error", f"Nothing was changed: {exc}.")
            return response
        pages.set_flash(response, request, "ok", f"Discrepancy {item_id} is {done}.")
        return response

    @router.get("/ops/runs")
    def runs_page(request: Request, session: SessionDep) -> Response:
        known = ctx.known()
        report = build_status(
            ctx.ledger, ctx.clock(), source=known.source, connections=known, runs=RUNS_SHOWN
        )
        status = plain(report.as_json())
        present = {name for run in status["runs"] for name in run["counts"]}
        return pages.page(
            request,
            "runs.html",
            session=session,
            active="runs",
            s=status,
            counts=[name for name in RUN_COUNTS if name in present],
        )

    @router.get("/ops/reports/aging")
    def aging_page(
        request: Request,
        session: SessionDep,
        as_of: str = "",
        currency: str = "",
        connection: str = "",
        by: str = "",
    ) -> Response:
        today = ctx.clock().date()
        known = ctx.known()
        chosen = connection.strip()
        error, report, chart = None, None, None
        try:
            day = parse_as_of(as_of.strip(), today)
            code = parse_currency(currency.strip())
        except ValueError as exc:
            error, day = str(exc), today
        else:
            found = aging(
                ctx.ledger, day, currency=code, connection=chosen or None,
                by_customer=by == "customer",
            )  # fmt: skip
            report = plain(found.as_json())
            chart = aging_chart(report["as_of"], report["currencies"])
        return pages.page(
            request,
            "aging.html",
            session=session,
            active="aging",
            as_of=day.isoformat(),
            currency=currency.strip().upper(),
            connection=chosen,
            connections=known.billing(),
            labels={name: view.label for name, view in known.views.items()},
            by_customer=by == "customer",
            report=report,
            chart=chart,
            buckets=BUCKETS,
            error=error,
        )

    return router
