"""One reconciliation pass in order, and `reconcile`, which wires one from an Engine."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from billsync.sync.engine.reconcile.closing import close_recorded_by_stages
from billsync.sync.engine.reconcile.deals import lost_after_invoice, unbilled_in_ledger, won_deals
from billsync.sync.engine.reconcile.recorder import DEFAULT_LIMIT, Reconciler, log
from billsync.sync.engine.reconcile.report import ReconcileReport
from billsync.sync.engine.reconcile.targets import TargetPass
from billsync.sync.engine.reconcile.writebacks import check_writebacks
from billsync.sync.engine.summary import RunSummary

if TYPE_CHECKING:
    from billsync.sync.engine.cycle import Engine


def run_pass(rec: Reconciler) -> ReconcileReport:
    """Run every check of the pass on ``rec`` and return its report."""
    if rec.limit < 1:
        raise ValueError("limit must be at least 1")
    rec.begin()
    log.info("reconcile.started", stage="reconcile", fix=rec.fix)
    close_recorded_by_stages(rec)
    unbilled_in_ledger(rec)
    for target, connector in rec.targets.items():
        TargetPass(rec, target, connector, rec.feeds.get(target)).run()
    won_deals(rec)
    lost_after_invoice(rec)
    check_writebacks(rec)
    rec.collect_open()
    log.info(
        "reconcile.finished",
        stage="reconcile",
        open=len(rec.report.open),
        recorded=rec.report.recorded,
        resolved=len(rec.report.resolved),
        fixed=len(rec.report.fixed),
        errors=sum(len(v) for v in rec.report.errors.values()),
    )
    return rec.report


def reconcile(
    engine: Engine,
    summary: RunSummary | None = None,
    *,
    fix: bool = False,
    limit: int = DEFAULT_LIMIT,
) -> ReconcileReport:
    """One reconciliation pass over the engine's ledger, source, targets and feeds.

    Call it holding the run lease (the cycle does; so does `billsync reconcile`): it
    writes ledger state, and a concurrent run would show half-done work as discrepancies.
    """
    from billsync.sync.engine.cycle import LEASE_TTL, RUN_LEASE, deals_cursor

    ledger = engine.ledger
    summary = summary or RunSummary(f"reconcile-{uuid.uuid4()}")

    def heartbeat() -> None:
        ledger.renew_lease(RUN_LEASE, engine.holder, LEASE_TTL)

    return run_pass(
        Reconciler(
            ledger=ledger,
            source=engine.source,
            targets=engine.targets,
            feeds=engine.feeds,
            now=engine.now,
            fix=fix,
            summary=summary,
            deals_cursor=ledger.get_cursor(deals_cursor(engine.source_name)),
            limit=limit,
            heartbeat=heartbeat,
        )
    )
