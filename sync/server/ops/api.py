"""The ops JSON API under ``/api``: the failure log, retry and resolve, discrepancies,
status and the AR reports — the same documents as the CLI's ``--json``.

Every request needs ``Authorization: Bearer <ops token>`` (401 otherwise; 404 while
no token is configured). Actions are audited as ``ops-api``. Errors are
``{"error", "message"}``; request validation errors keep FastAPI's 422 shape.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run
# time, and they use aliases local to the router factory.

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from billsync.core.canonical import DiscrepancyKind
from billsync.sync.ledger.ops_reads import FailureView
from billsync.sync.ops.aging import aging
from billsync.sync.ops.discrepancies import (
    DiscrepancyClosed,
    DiscrepancyView,
    UnknownDiscrepancy,
    list_discrepancies,
)
from billsync.sync.ops.discrepancies import acknowledge as acknowledge_discrepancy
from billsync.sync.ops.discrepancies import resolve as resolve_discrepancy
from billsync.sync.ops.failures import (
    ActionOutcome,
    FailureQuery,
    UnknownFailure,
    list_failures,
    resolve_failures,
    retry_all,
    retry_failures,
    show_failure,
)
from billsync.sync.ops.kpis import DEFAULT_DAYS, kpis
from billsync.sync.ops.status import build_status
from billsync.sync.server.ops import models
from billsync.sync.server.ops.auth import api_actor
from billsync.sync.server.ops.context import OpsContext
from billsync.sync.server.ops.errors import Conflict, NotFound
from billsync.sync.server.ops.views import (
    AS_OF_PATTERN,
    currency_codes,
    parse_as_of,
    plain,
    utc,
)
from billsync.sync.server.webhooks import Problem

ItemId = Annotated[int, Path(ge=1, le=models.MAX_ID, description="the failure's id")]
DiscrepancyId = Annotated[int, Path(ge=1, le=models.MAX_ID, description="the discrepancy's id")]
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No or wrong ops token"},
    429: {"model": Problem, "description": "Too many wrong ops tokens: wait Retry-After"},
    404: {"model": Problem, "description": "Unknown id, or the ops API is off (no ops.token)"},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "A run holds the item, or it is already closed"}
}


def _invalid(name: str, value: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", name), "msg": message, "input": value}]
    )


def _report(action: Literal["retry", "resolve"], actor: str, outcomes: list[ActionOutcome]) -> Any:
    return {"action": action, "actor": actor, "items": [o.as_json() for o in outcomes]}


def _one(action: Literal["retry", "resolve"], actor: str, outcomes: list[ActionOutcome]) -> Any:
    [outcome] = outcomes
    if not outcome.done:
        verb = "retried" if action == "retry" else "resolved"
        raise Conflict(f"failure {outcome.id} was not {verb}: {outcome.reason}")
    return _report(action, actor, outcomes)


def api_router(ctx: OpsContext) -> APIRouter:
    bearer = HTTPBearer(
        auto_error=False, description="The ops token: the value of ops.token in the config."
    )

    def actor(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> str:
        return api_actor(ctx, request, request.headers.get("authorization"))

    Actor = Annotated[str, Depends(actor)]
    router = APIRouter(prefix="/api", tags=["ops"], responses=REFUSALS)
    codes = currency_codes()
    AsOf = Annotated[
        str | None,
        Query(
            pattern=AS_OF_PATTERN,
            description="report date, YYYY-MM-DD (default: today, UTC)",
            json_schema_extra={"format": "date"},
        ),
    ]
    Currency = Annotated[
        str | None,
        Query(description="only this currency (ISO 4217)", json_schema_extra={"enum": codes}),
    ]

    def day(value: str | None) -> date:
        try:
            return parse_as_of(value, ctx.clock().date())
        except ValueError as exc:
            raise _invalid("as_of", value or "", str(exc)) from None

    def currency_code(value: str | None) -> str | None:
        if value is not None and value not in codes:
            raise _invalid("currency", value, f"'{value}' is not an ISO 4217 currency code")
        return value

    Connection = Annotated[
        str | None,
        Query(max_length=64, description="only this connection (a target or provider)"),
    ]

    @router.get("/failures", response_model=list[models.Failure], summary="List failures")
    def get_failures(
        _actor: Actor,
        status: Annotated[FailureView, Query(description="which failures")] = FailureView.OPEN,
        connection: Connection = None,
        target: Annotated[
            str | None, Query(max_length=64, description="the former name of connection")
        ] = None,
        error_class: Annotated[str | None, Query(alias="class", max_length=64)] = None,
        since: Annotated[
            datetime | None, Query(description="last activity at or after (UTC if no zone)")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    ) -> Any:
        moment = utc(since) if since else None
        query = FailureQuery(status, connection or target, error_class, moment, limit)
        rows = list_failures(ctx.ledger, query, connections=ctx.known())
        return plain([row.as_json() for row in rows])

    @router.get(
        "/failures/{item_id}",
        response_model=models.FailureDetail,
        summary="One failure: advice, attempts, the deal, the audit trail",
    )
    def get_failure(_actor: Actor, item_id: ItemId) -> Any:
        try:
            return plain(show_failure(ctx.ledger, item_id, connections=ctx.known()).as_json())
        except UnknownFailure as exc:
            raise NotFound(str(exc)) from None

    @router.post(
        "/failures/retry",
        response_model=models.ActionReport,
        summary="Retry several failures, or all open ones (of a class / connection)",
    )
    def post_retry_many(
        who: Actor, body: Annotated[models.RetryIds | models.RetryAll, Body()]
    ) -> Any:
        try:
            if isinstance(body, models.RetryAll):
                outcomes = retry_all(
                    ctx.ledger, who, error_class=body.error_class,
                    connection=body.connection or body.target, note=body.note,
                )  # fmt: skip
            else:
                outcomes = retry_failures(ctx.ledger, body.ids, who, body.note)
        except UnknownFailure as exc:
            raise NotFound(f"{exc}; nothing was retried") from None
        return _report("retry", who, outcomes)

    @router.post(
        "/failures/{item_id}/retry",
        response_model=models.ActionReport,
        responses=CONFLICT,
        summary="Queue one failure for the next run, attempts reset",
    )
    def post_retry(
        who: Actor, item_id: ItemId, body: Annotated[models.RetryNote | None, Body()] = None
    ) -> Any:
        try:
            outcomes = retry_failures(ctx.ledger, [item_id], who, body.note if body else None)
        except UnknownFailure as exc:
            raise NotFound(str(exc)) from None
        return _one("retry", who, outcomes)

    @router.post(
        "/failures/{item_id}/resolve",
        response_model=models.ActionReport,
        responses=CONFLICT,
        summary="Close one failure without success, with a note saying why",
    )
    def post_resolve(who: Actor, item_id: ItemId, body: models.ResolveRequest) -> Any:
        try:
            outcomes = resolve_failures(ctx.ledger, [item_id], who, body.note)
        except UnknownFailure as exc:
            raise NotFound(str(exc)) from None
        return _one("resolve", who, outcomes)

    @router.get(
        "/discrepancies",
        response_model=list[models.Discrepancy],
        summary="Discrepancies (open by default, oldest first)",
    )
    def get_discrepancies(
        _actor: Actor,
        kind: DiscrepancyKind | None = None,
        status: Annotated[
            DiscrepancyView, Query(description="which discrepancies")
        ] = DiscrepancyView.OPEN,
        limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    ) -> Any:
        return list_discrepancies(ctx.ledger, status, kind.value if kind else None, limit)

    def _discrepancy_action(action: Any, item_id: int, who: str, note: str) -> Any:
        try:
            return action(ctx.ledger, item_id, who, note)
        except UnknownDiscrepancy as exc:
            raise NotFound(str(exc)) from None
        except DiscrepancyClosed as exc:
            raise Conflict(str(exc)) from None

    @router.post(
        "/discrepancies/{item_id}/acknowledge",
        response_model=models.Discrepancy,
        responses=CONFLICT,
        summary="Acknowledge one open discrepancy with a note (stays open; reconcile "
        "no longer exits 1 for it)",
    )
    def post_acknowledge(who: Actor, item_id: DiscrepancyId, body: models.DiscrepancyNote) -> Any:
        return _discrepancy_action(acknowledge_discrepancy, item_id, who, body.note)

    @router.post(
        "/discrepancies/{item_id}/resolve",
        response_model=models.Discrepancy,
        responses=CONFLICT,
        summary="Close one open discrepancy by hand, with a note saying why",
    )
    def post_resolve_discrepancy(
        who: Actor, item_id: DiscrepancyId, body: models.DiscrepancyNote
    ) -> Any:
        return _discrepancy_action(resolve_discrepancy, item_id, who, body.note)

    @router.get("/status", response_model=models.Status, summary="billsync status")
    def get_status(_actor: Actor) -> Any:
        known = ctx.known()
        report = build_status(ctx.ledger, ctx.clock(), source=known.source, connections=known)
        return plain(report.as_json())

    @router.get(
        "/reports/aging",
        response_model=models.Aging,
        response_model_exclude_unset=True,
        summary="AR aging per currency and connection (and per customer)",
    )
    def get_aging(
        _actor: Actor,
        as_of: AsOf = None,
        currency: Currency = None,
        connection: Connection = None,
        by: Annotated[Literal["customer"] | None, Query(description="rows per customer")] = None,
    ) -> Any:
        report = aging(
            ctx.ledger, day(as_of), currency=currency_code(currency), connection=connection,
            by_customer=by == "customer",
        )  # fmt: skip
        return plain(report.as_json())

    @router.get("/reports/kpis", response_model=models.Kpis, summary="AR KPIs over a window")
    def get_kpis(
        _actor: Actor,
        as_of: AsOf = None,
        days: Annotated[int, Query(ge=1, le=3650, description="window length")] = DEFAULT_DAYS,
        currency: Currency = None,
        connection: Connection = None,
    ) -> Any:
        report = kpis(
            ctx.ledger, day(as_of), days=days, currency=currency_code(currency),
            connection=connection,
        )  # fmt: skip
        return plain(report.as_json())

    return router
