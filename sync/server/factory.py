"""Builds a ready-to-serve app from settings: the one place `billsync serve` is wired.

Used in-process by the CLI (one worker) and, through ``app_from_environment``, by
uvicorn's worker processes (``--workers N``), which each build their own ledger
connection, connectors, inbox worker and scheduler. Several inbox workers are safe
(claims are exclusive); several schedulers are safe (the run lease admits one run).
"""

from __future__ import annotations

import os
from datetime import timedelta

from fastapi import FastAPI

from billsync.config.loader import load_settings
from billsync.config.settings import Settings
from billsync.core.logs import configure_logging, get_logger
from billsync.sync import wiring
from billsync.sync.apicalls import hosts_from_settings, install_api_call_observer
from billsync.sync.engine.cycle import LeaseHeld, run_cycle
from billsync.sync.engine.first_run import StartChoice, StartNotChosen, resolve_start, watermark_at
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from billsync.sync.ops.connections import from_settings
from billsync.sync.ops.status import CredentialWarnings
from billsync.sync.server.app import ServerParts, create_app
from billsync.sync.server.cron import CronSchedule
from billsync.sync.server.metrics import Metrics
from billsync.sync.server.protocol import GuardedH11Protocol, connection_limit, raise_fd_limit
from billsync.sync.server.scheduler import ScheduledRuns
from billsync.sync.server.worker import InboxWorker

log = get_logger("billsync.server")

SCHEDULE_ENV = "BILLSYNC_SERVE_SCHEDULE"
"""How `billsync serve --workers N --schedule …` hands the schedule to its workers."""


def build_app(settings: Settings, *, schedule: CronSchedule | None = None) -> FastAPI:
    db = create_ledger_engine(settings.ledger.url)
    upgrade_to_head(db)  # as `billsync run` does: a new version starts on an old ledger
    ledger = Ledger(db)
    holder = wiring.new_holder()
    mapping = wiring.mapping_for(settings)
    built = wiring.targets_for(settings, ledger, holder, mapping=mapping)
    engine = wiring.engine_for(settings, ledger, holder=holder, mapping=mapping, built=built)
    unsigned = sorted(set(built.targets) - set(built.webhooks))
    if unsigned:
        # /webhooks/<name> answers 404 for these; the answer does not say why, this does.
        log.warning(
            "server.no_webhooks",
            connections=unsigned,
            fix="their payments arrive by polling only; to receive their events at "
            "/webhooks/<name>, set the webhook secret in each one's settings section",
        )
    connections = from_settings(settings)
    metrics = Metrics(
        ledger, now=wiring.utc_now, credentials=CredentialWarnings(ledger, connections)
    )
    uninstall = install_api_call_observer(hosts_from_settings(settings), metrics.api_call)
    scheduler = None
    if schedule is not None:
        scheduler = ScheduledRuns(schedule, lambda: scheduled_run(settings, ledger))
    parts = ServerParts(
        ledger=ledger,
        verifiers=built.webhooks,
        metrics=metrics,
        max_body_bytes=settings.server.max_body_bytes,
        worker=InboxWorker(engine),
        scheduler=scheduler,
        on_shutdown=[uninstall, db.dispose],
        ops_token=settings.ops.token,
        ops_session_idle=timedelta(minutes=settings.ops.session_idle_minutes),
        source=settings.sync.source,
        clock=wiring.utc_now,
        connections=tuple(built.targets),
        ops_connections=connections,
    )
    return create_app(parts)


def scheduled_run(settings: Settings, ledger: Ledger) -> None:
    """One cycle with a fresh engine (mapping files are re-read, as a cron run would)."""
    engine = wiring.engine_for(settings, ledger)
    choice = StartChoice(start_from=settings.start_from())
    try:
        start = resolve_start(ledger, engine.source, choice, source_name=engine.source_name)
    except StartNotChosen as stop:
        log.error("schedule.start_not_chosen", reason=stop.message())
        return
    source = settings.connector_specs[settings.sync.source]
    since = watermark_at(start, source) if start is not None else None
    try:
        summary = run_cycle(engine, since=since)
    except LeaseHeld:
        log.info("schedule.skipped", reason="another run holds the lease")
        return
    log.info("schedule.run_finished", outcome=summary.outcome, run_id=summary.run_id)


def app_from_environment() -> FastAPI:
    """uvicorn factory for worker processes: settings from $BILLSYNC_CONFIG and the
    environment, exactly as the parent process read them."""
    settings = load_settings(None)
    configure_logging(
        log_format=settings.logging.format,
        level=settings.logging.level,
        secrets=settings.secret_values(),
    )
    max_connections = connection_limit(settings.server.max_connections, raise_fd_limit())
    GuardedH11Protocol.configure(settings.server.header_timeout_s, max_connections)
    expression = os.environ.get(SCHEDULE_ENV)
    return build_app(settings, schedule=CronSchedule.parse(expression) if expression else None)
