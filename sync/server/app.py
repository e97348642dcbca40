"""The FastAPI application of `billsync serve`, assembled from explicit parts.

`billsync.sync.server.factory` builds the parts from settings (connectors, ledger, worker,
scheduler); tests build them by hand. The app starts the background threads when it
starts serving and stops them after uvicorn has finished the in-flight requests, so a
SIGTERM never cuts an acknowledged event: what is stored stays pending for the next
start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import version
from typing import Protocol

from fastapi import FastAPI, Response
from pydantic import SecretStr

from billsync.core.logs import get_logger
from billsync.core.protocols import WebhookVerifier
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.base import utc_now
from billsync.sync.ops.connections import Connections
from billsync.sync.server.health import health_router
from billsync.sync.server.ops import OpsContext, install_ops
from billsync.sync.server.ops.auth import token_problem
from billsync.sync.server.ops.context import DEFAULT_IDLE
from billsync.sync.server.ops.signing import Signer, ledger_signer
from billsync.sync.server.ops.throttle import LoginThrottle, ThrottlePolicy
from billsync.sync.server.scheduler import ScheduledRuns
from billsync.sync.server.webhooks import WebhookObserver, WebhookReceiver, webhook_router
from billsync.sync.server.worker import InboxWorker

log = get_logger("billsync.server")


class MetricsPage(WebhookObserver, Protocol):
    def render(self) -> tuple[bytes, str]: ...

    def login_refused(self, reason: str) -> None: ...


@dataclass
class ServerParts:
    ledger: Ledger
    verifiers: Mapping[str, WebhookVerifier]
    metrics: MetricsPage
    max_body_bytes: int
    worker: InboxWorker | None = None
    scheduler: ScheduledRuns | None = None
    on_shutdown: list[Callable[[], None]] = field(default_factory=list)
    """Run after the threads stopped (e.g. uninstall the API-call observer, dispose
    the database engine)."""
    ops_token: SecretStr | None = None
    """Turns on the ops pages (/ops) and API (/api); None leaves them answering 404."""
    ops_session_idle: timedelta = DEFAULT_IDLE
    """An ops session not seen for this long has ended (``ops.session_idle_minutes``)."""
    ops_login_limits: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    """How many wrong ops tokens a client, and everyone, may try (`ops.throttle`)."""
    ops_secure_cookie: bool | None = None
    """The ops session cookie's Secure flag; None: set it when the request is https."""
    source: str = ""
    """The deal source's connection name (``sync.source``), for the ops pages."""
    clock: Callable[[], datetime] = utc_now
    ops_connections: Connections | None = None
    """The configured connections the ops pages and API show (`ops.connections`); None:
    each installed connector is the one connection named after its kind."""
    connections: tuple[str, ...] = ()
    """Every target connection this server serves: a verifier may hand a notification
    to a same-kind peer (one vendor app may notify for all its companies), stored under
    that peer only when it is served here. Empty: the verifiers' own names."""


def create_app(parts: ServerParts) -> FastAPI:
    """The app; ValueError if the ops token is too short to turn the ops pages on."""
    problem = token_problem(parts.ops_token)
    if problem is not None:
        raise ValueError(problem)
    worker, scheduler = parts.worker, parts.scheduler

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
            worker.wake()  # events left by a previous process are processed at once
        if scheduler is not None:
            scheduler.start()
        log.info(
            "server.started",
            webhooks=sorted(parts.verifiers),
            inbox_worker=worker is not None,
            schedule=scheduler.schedule.expression if scheduler else None,
        )
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
            if worker is not None:
                worker.stop()
            for step in parts.on_shutdown:
                step()
            log.info("server.stopped")

    app = FastAPI(
        title="billsync",
        version=version("billsync"),
        summary="Webhook receiver, health, metrics and the ops API of billsync",
        lifespan=lifespan,
    )
    parts.metrics.webhook_connections(sorted(parts.verifiers))
    receiver = WebhookReceiver(
        ledger=parts.ledger,
        verifiers=parts.verifiers,
        connections=frozenset(parts.connections or parts.verifiers),
        observer=parts.metrics,
        max_body_bytes=parts.max_body_bytes,
        on_stored=worker.wake if worker is not None else (lambda: None),
    )
    app.include_router(webhook_router(receiver))
    app.include_router(
        health_router(parts.ledger.engine, (lambda: worker.alive) if worker is not None else None)
    )
    install_ops(
        app,
        OpsContext(
            ledger=parts.ledger,
            token=parts.ops_token,
            clock=parts.clock,
            source=parts.source,
            connections=parts.ops_connections,
            secure_cookie=parts.ops_secure_cookie,
            # The ledger's random key, shared by every worker; never one derived from
            # the token (the login form would be an offline oracle for it).
            signer=ledger_signer(parts.ledger) if parts.ops_token else Signer.random(),
            session_idle=parts.ops_session_idle,
            throttle=LoginThrottle(parts.ops_login_limits),
            on_login_refused=parts.metrics.login_refused,
        ),
    )

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    def metrics() -> Response:
        body, content_type = parts.metrics.render()
        return Response(body, media_type=content_type)

    return app
