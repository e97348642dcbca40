"""One sync cycle: lease, stages in DESIGN.md order, summary, release.

Stages: pull+invoice (the watermark advances only past deals whose outcome is recorded),
retry (due items of the retry queue), then the later stages that other modules add
(payments, write-back, reconcile). A stage never lets a vendor failure escape: it is
recorded and the run goes on; only a lease held by someone else stops the run before
it starts (exit 3).

Fencing (DESIGN.md "Exactly once"): the run works under the lease claim it acquired (a
`Fence`, whose token rises with every acquisition). Intents and the invoice stage's
outcomes are written only while that claim is current; the heartbeat marks the claim
lost when it cannot renew it, and the invoice stage checks that mark before every create
call. A run frozen past its lease (VM pause, SIGSTOP) therefore stops before its next
vendor write and raises `LeaseTakenOver` (exit 3) instead of working on a stale batch.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError

from billsync.core.canonical import Deal
from billsync.core.logs import get_logger
from billsync.core.protocols import (
    ConnectorError,
    Cursor,
    DealSource,
    FetchesDeals,
    InvoiceTarget,
    PaymentFeed,
    ReadRejection,
    ReportsQuota,
)
from billsync.mappings.loader import LoadedMapping
from billsync.mappings.plan import Planner
from billsync.sync.engine import routing
from billsync.sync.engine.failures import INVOICE, FailureRecorder, RetryPolicy
from billsync.sync.engine.invoicing import InvoiceStage
from billsync.sync.engine.payments import PaymentStage
from billsync.sync.engine.recording import Job
from billsync.sync.engine.summary import RunSummary
from billsync.sync.engine.writeback import WriteBackStage
from billsync.sync.ledger import Fence, LeaseLost, Ledger
from billsync.sync.ledger.ops_reads import quota_cursor, quota_cursor_value
from billsync.sync.planning import DEAL_SOURCE

log = get_logger("billsync.engine")

RUN_LEASE = "run"
BATCH_SIZE = 200
LEASE_TTL = timedelta(seconds=90)
WORK_LEASE = timedelta(minutes=10)
STAGES = ("pull", "invoice", "payments", "writeback", "retry", "reconcile")
# Reconciliation reads invoices back from the targets (calls per invoice), so a
# routine run leaves it out; `--only reconcile` or `billsync reconcile` runs it.
DEFAULT_STAGES = ("pull", "invoice", "payments", "writeback", "retry")


class LeaseHeld(Exception):
    """Another run holds the ledger's run lease."""


class LeaseTakenOver(LeaseHeld):
    """This run lost its lease mid-run (another run took it over): it stopped before its
    next vendor write. A LeaseHeld, so a scheduler that skips a busy ledger skips this."""

    MESSAGE = "another run took over the lease; this run stopped before its next vendor write"


@dataclass
class Engine:
    """Everything a cycle needs, wired by `billsync.sync.wiring`."""

    ledger: Ledger
    source: DealSource
    targets: Mapping[str, InvoiceTarget]
    feeds: Mapping[str, PaymentFeed]
    planner: Planner
    mapping: LoadedMapping
    policy: RetryPolicy
    now: Callable[[], datetime]
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}")
    batch_size: int = BATCH_SIZE
    progress: Callable[[RunSummary], None] | None = None
    """Called after each batch of deals (the CLI draws a progress line on a TTY)."""
    lease_ttl: timedelta = LEASE_TTL
    """Short, and renewed by a heartbeat while the run is alive: a run killed by SIGKILL
    or a lost container blocks the next one for at most this long."""
    source_connection: str | None = None
    """The deal source's connection (`sync.source`); None: the name the source gives
    itself (`DealSource.system`)."""
    source_label: str = DEAL_SOURCE
    """How messages to operators name the deal source (its connector spec's label)."""

    @property
    def source_name(self) -> str:
        """The name of the deal source's rows in the ledger (its cursors)."""
        return self.source_connection or self.source.system


def deals_cursor(source: str) -> str:
    """The deal source's watermark row, named after its connection: ``<source>.deals``.
    The plain source section is the connection named after its kind, so a ledger written
    before connections existed keeps reading its row."""
    return f"{source}.deals"


class _Heartbeat(threading.Thread):
    """Renews the run lease every third of its lifetime while the run works."""

    def __init__(self, engine: Engine, fence: Fence) -> None:
        super().__init__(name="billsync-lease-heartbeat", daemon=True)
        self.engine = engine
        self.fence = fence
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = self.engine.lease_ttl.total_seconds() / 3
        while not self.stopped.wait(interval):
            if not self.beat():
                return

    def beat(self) -> bool:
        """Renew once; on failure the fence is marked lost (the invoice stage then stops
        before its next create call). False when the lease is gone."""
        if renew(self.engine, self.fence):
            return True
        log.error("run.lease_lost", holder=self.engine.holder, token=self.fence.token)
        return False


def renew(engine: Engine, fence: Fence) -> bool:
    """Extend this run's claim; False (and the fence marked lost) once another run took
    the lease. Never raises for a database hiccup: the next beat tries again."""
    try:
        return engine.ledger.renew_lease(RUN_LEASE, engine.holder, engine.lease_ttl, fence=fence)
    except SQLAlchemyError as error:
        log.warning("run.lease_renew_failed", holder=engine.holder, error=type(error).__name__)
        return not fence.lost.is_set()


def run_cycle(
    engine: Engine, *, stages: tuple[str, ...] = DEFAULT_STAGES, since: Cursor | None = None
) -> RunSummary:
    ledger = engine.ledger
    fence = ledger.acquire_fence(RUN_LEASE, engine.holder, engine.lease_ttl)
    if fence is None:
        raise LeaseHeld(RUN_LEASE)
    heartbeat = _Heartbeat(engine, fence)
    heartbeat.start()
    try:
        run_id = ledger.start_run(engine.now())
        summary = RunSummary(run_id)
        with structlog.contextvars.bound_contextvars(run_id=run_id):
            _stages(engine, fence, summary, stages, since)
    except LeaseLost:
        log.error("run.stopped_lease_lost", holder=engine.holder, token=fence.token)
        raise LeaseTakenOver(LeaseTakenOver.MESSAGE) from None
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)
        ledger.release_lease(RUN_LEASE, engine.holder)
    return summary


def _stages(
    engine: Engine,
    fence: Fence,
    summary: RunSummary,
    stages: tuple[str, ...],
    since: Cursor | None,
) -> None:
    ledger, run_id = engine.ledger, summary.run_id
    log.info("run.started", stages=list(stages))
    outcome: str | None = None
    try:
        failures = FailureRecorder(
            ledger,
            engine.policy,
            mapping_hash=engine.mapping.digest,
            run_id=run_id,
            holder=engine.holder,
            now=engine.now,
        )
        ledger.rearm_invalid_work(engine.mapping.digest)
        invoicing = InvoiceStage(
            ledger,
            engine.targets,
            engine.planner,
            failures,
            summary,
            run_id,
            engine.now,
            fence,
            source_label=engine.source_label,
        )
        if "pull" in stages or "invoice" in stages:
            _pull_and_invoice(engine, fence, invoicing, summary, since)
        if "payments" in stages:
            PaymentStage(ledger, engine.feeds, failures, summary, engine.holder, engine.now).run()
        if "retry" in stages:
            _retry(engine, fence, invoicing, summary)
        if "writeback" in stages:
            WriteBackStage(
                ledger, engine.source, failures, summary, engine.holder, engine.now
            ).run()
        if "reconcile" in stages:
            from billsync.sync.engine.reconcile import reconcile

            reconcile(engine, summary)  # records discrepancies on the summary itself
    except LeaseLost:
        outcome = "lease_lost"
        raise
    finally:
        summary.finish()
        if outcome is None:  # a run that lost its lease writes nothing more but its log
            _record_quota(engine)
            _record_refused_credentials(engine, summary)
        outcome = outcome or summary.outcome
        ledger.finish_run(run_id, outcome, summary.as_json(), engine.now())
        details = {k: v for k, v in summary.as_json().items() if k != "run_id"}
        log.info("run.finished", outcome=outcome, **details)


def _record_quota(engine: Engine) -> None:
    """Keep the source's API allocation as last seen (a source that `ReportsQuota` reads
    it off its responses), so `billsync status` can show it between runs."""
    if not isinstance(engine.source, ReportsQuota):
        return
    quota = engine.source.quota
    if quota.max is None:
        return
    engine.ledger.set_cursor(
        quota_cursor(engine.source_name),
        quota_cursor_value(quota.used, quota.max, str(quota.floor_percent), quota.stopped),
    )


def _record_refused_credentials(engine: Engine, summary: RunSummary) -> None:
    """Keep each refusal of credentials (e.g. a revoked OAuth grant) where
    `billsync auth … --status` and `billsync status` read it between runs."""
    for system in sorted(summary.auth_failed):
        engine.ledger.set_cursor(
            refused_cursor(system),
            json.dumps(
                {
                    "at": engine.now().isoformat(),
                    "run_id": summary.run_id,
                    "message": summary.stopped.get(system, "credentials refused"),
                }
            ),
        )


def refused_cursor(system: str) -> str:
    """The cursor that records the last refusal of ``system``'s credentials by a run."""
    return f"auth.{system}.refused"


class _BatchFailed(Exception):
    """A batch could not be processed (e.g. a target's catalogue failed to load)."""


def _pull_and_invoice(
    engine: Engine,
    fence: Fence,
    invoicing: InvoiceStage,
    summary: RunSummary,
    since: Cursor | None,
) -> None:
    ledger = engine.ledger
    watermark = deals_cursor(engine.source_name)
    cursor = since if since is not None else ledger.get_cursor(watermark)
    batch: list[Deal | ReadRejection] = []
    last: Cursor | None = None

    def flush() -> None:
        nonlocal batch
        if not batch:
            return
        pending, batch = batch, []
        try:
            invoicing.process(pending)
        except ConnectorError as error:
            # Nothing of this batch is known to be recorded: keep the watermark where it
            # is, so the next run reads these deals again (the ledger dedupes them).
            summary.connector_stopped(error.system, error, stage="invoice")
            raise _BatchFailed from None
        if not renew(engine, fence):
            raise LeaseLost(fence)  # the watermark stays: the new holder owns it now
        if last:
            # Only now is every deal up to `last` recorded (invoiced, queued or needing
            # attention): a crash before this line re-reads the batch, and the ledger
            # turns the re-read into look-ups, never into second invoices.
            with ledger.fenced(fence):
                ledger.set_cursor(watermark, last)
        if engine.progress is not None:
            engine.progress(summary)

    try:
        for checkpointed in engine.source.pull(cursor):
            batch.append(checkpointed.item)
            last = checkpointed.cursor
            if len(batch) >= engine.batch_size:
                flush()
        flush()
    except _BatchFailed:
        return
    except ConnectorError as error:
        summary.connector_stopped(error.system, error, stage="pull")
        try:
            flush()  # what was read before the failure is still processed and recorded
        except _BatchFailed:
            return


def _retry(engine: Engine, fence: Fence, invoicing: InvoiceStage, summary: RunSummary) -> None:
    """Run due items of the retry queue.

    Items that carry their draft are created again (looked up first). Items without
    one — deals rejected before and re-armed by a mapping change or an operator — are
    read again from the source, when it can fetch deals by id, and planned afresh.
    """
    ledger = engine.ledger
    items = ledger.lease_due_work(engine.now(), 500, engine.holder, WORK_LEASE, kinds=(INVOICE,))
    jobs: dict[str, list[Job]] = defaultdict(list)
    refetch: dict[str, int] = {}
    for item in items:
        payload = item.payload
        if "draft" not in payload:
            refetch[str(payload["deal_id"])] = item.id
            continue
        deal_id, target = str(payload["deal_id"]), str(payload["target"])
        records = ledger.deal_rows(deal_id)
        record = next((r for r in records if r.target == target), None)
        if routing.invoiced(records) is not None or (
            record is not None and record.state in routing.CLOSED
        ):
            # Invoiced (in this target or another), or this target's attempt was closed
            # (abandoned, rerouted, audited): nothing to create here.
            with ledger.fenced(fence):
                ledger.complete_work(item.id, holder=engine.holder)
            continue
        if routing.unresolved_elsewhere(records, target):
            continue  # another target's attempt first; the item comes back when its lease ends
        reference = record.reference if record is not None else None
        jobs[target].append(Job.from_payload(payload, item.revision or "", reference))
        summary.retried += 1
    for target, batch in jobs.items():
        if target in engine.targets:
            invoicing.invoice(target, batch)
    if refetch:
        _replan(engine, invoicing, summary, refetch)


def _replan(
    engine: Engine, invoicing: InvoiceStage, summary: RunSummary, items: dict[str, int]
) -> None:
    ledger = engine.ledger
    source = engine.source
    if not isinstance(source, FetchesDeals):
        for item_id in items.values():  # nothing to re-read with: back to waiting
            ledger.fail_work(
                item_id,
                "invalid_data",
                "VALIDATION",
                "waiting for the deal to change",
                engine.policy.next_attempt(engine.now(), 1),
                True,
                holder=engine.holder,
            )
        return
    try:
        deals = list(source.fetch_deals(list(items)))
    except ConnectorError as error:
        summary.connector_stopped(error.system, error, stage="retry")
        return
    summary.retried += len(deals)
    invoicing.process(deals)
    for item_id in items.values():
        item = ledger.get_work(item_id)
        if item is not None and item.status == "leased" and item.leased_by == engine.holder:
            # Nothing left to do for it (already invoiced, or no longer a won deal).
            ledger.complete_work(item_id, holder=engine.holder)
