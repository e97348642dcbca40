"""The read-only ops pages: open discrepancies, runs (with the rest of the status),
and the aging report with its chart."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run
# time, and they use aliases local to the router factory.

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from sync.canonical import DiscrepancyKind
from sync.ops.aging import BUCKETS, aging
from sync.ops.status import RUN_COUNTS, build_status
from sync.server.ops.auth import Session
from sync.server.ops.charts import aging_chart
from sync.server.ops.context import OpsContext
from sync.server.ops.pages import session_dependency
from sync.server.ops.templating import Pages
from sync.server.ops.views import open_discrepancies, parse_as_of, parse_currency, plain

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

    @router.get("/ops/runs")
    def runs_page(request: Request, session: SessionDep) -> Response:
        status = plain(build_status(ctx.ledger, ctx.clock(), runs=RUNS_SHOWN).as_json())
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
        request: Request, session: SessionDep, as_of: str = "", currency: str = "", by: str = ""
    ) -> Response:
        today = ctx.clock().date()
        error, report, chart = None, None, None
        try:
            day = parse_as_of(as_of.strip(), today)
            code = parse_currency(currency.strip())
        except ValueError as exc:
            error, day = str(exc), today
        else:
            found = aging(ctx.ledger, day, currency=code, by_customer=by == "customer")
            report = plain(found.as_json())
            chart = aging_chart(report["as_of"], report["currencies"])
        return pages.page(
            request,
            "aging.html",
            session=session,
            active="aging",
            as_of=day.isoformat(),
            currency=currency.strip().upper(),
            by_customer=by == "customer",
            report=report,
            chart=chart,
            buckets=BUCKETS,
            error=error,
        )

    return router
