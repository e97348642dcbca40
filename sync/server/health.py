"""`GET /healthz` (the process answers) and `GET /readyz` (it can do its job).

Liveness must not depend on the database, or an orchestrator would restart every
replica during a ledger blip; readiness does: ledger reachable, schema exactly at this
version's head (an older binary next to a newer schema must not take traffic), and the
inbox worker coming round its loop.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from billsync.core.logs import get_logger
from billsync.sync.ledger import current_revision, head_revision

log = get_logger("billsync.server")

OK = "ok"


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str  # "ready" or "not_ready"
    checks: dict[str, str]  # check name -> "ok" or why not


def readiness_checks(db: Engine, worker_alive: Callable[[], bool] | None) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with db.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["ledger"] = OK
    except sa.exc.SQLAlchemyError as exc:
        checks["ledger"] = f"unreachable ({type(exc).__name__})"
    if checks["ledger"] == OK:
        try:
            revision, head = current_revision(db), head_revision()
            checks["migrations"] = (
                OK
                if revision == head
                else f"schema at {revision}, this version needs {head}: run billsync migrate"
            )
        except sa.exc.SQLAlchemyError as exc:
            checks["migrations"] = f"unknown ({type(exc).__name__})"
    else:
        checks["migrations"] = "unknown (ledger unreachable)"
    if worker_alive is not None:
        checks["inbox_worker"] = OK if worker_alive() else "not running or stuck"
    return checks


def health_router(db: Engine, worker_alive: Callable[[], bool] | None) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health, summary="The process is alive")
    async def healthz() -> Health:
        return Health(status=OK)

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready; checks say why"}},
        summary="Ledger reachable, migrations current, inbox worker alive",
    )
    def readyz() -> JSONResponse:
        checks = readiness_checks(db, worker_alive)
        ready = all(value == OK for value in checks.values())
        if not ready:
            log.warning("server.not_ready", **checks)
        body = Readiness(status="ready" if ready else "not_ready", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    return router
