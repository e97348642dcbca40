"""Map, validate and invoice deals exactly once (DESIGN.md run cycle steps 3–4).

For each deal, in this order:
1. a deal already invoiced for any target is never invoiced again: if its billing
   content changed, that is a `deal_changed_after_invoice` discrepancy (on_deal_change
   flag, the default);
2. the planner maps and validates it; a rejection is a needs-attention item naming the
   deal, the field and the fix;
3. an intent still unresolved in another target is resolved first (`routing`): adopted
   there, or closed as confirmed absent, before this target may create;
4. the intent (deal, target, content revision, idempotency key, the reference the
   invoice is created with) is committed to the ledger BEFORE any vendor call;
5. a deal whose earlier attempt may have reached the target (intent still `invoicing`
   after a crash, or `failed` after a timeout) is first looked up in the target by the
   stored reference and adopted if found; only otherwise is it created, with the SAME key;
6. the outcome is recorded (`recording`): invoice row, deal state, audit row, a total
   that differs from the draft becomes a discrepancy; failures go to the retry queue.

Split by job: `triage.Triage` does steps 1–4 for each deal of a batch and hands over
jobs per target; `InvoiceStage` runs each target's jobs (step 5), with
`customers.Customers` resolving their customers and `recording.Recorder` doing step 6.

Fencing: intents and outcomes are written only under the run's current lease claim
(`fence`), and the claim is checked before every create call; a run that lost its lease
raises LeaseLost before its next vendor write.

Per batch rather than per deal where that changes nothing above: the ledger is read
once for the whole batch before triage (`KnownDeals`), and a target's outcomes are
recorded in one transaction after its create call. Intents stay one committed
transaction each, before the create call.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

from billsync.core.canonical import Deal, InvoiceRef, InvoiceStatus
from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, ErrorClass, InvoiceTarget, ReadRejection
from billsync.mappings.plan import Planner
from billsync.sync.engine.customers import Customers
from billsync.sync.engine.failures import FailureRecorder
from billsync.sync.engine.known import KnownDeals
from billsync.sync.engine.recording import Job, Recorder, find_all, missing_outcome
from billsync.sync.engine.summary import CONNECTOR_STOPPED, RunSummary
from billsync.sync.engine.triage import Triage
from billsync.sync.ledger import Fence, Ledger
from billsync.sync.planning import DEAL_SOURCE

log = get_logger("billsync.engine")


@dataclass
class InvoiceStage:
    ledger: Ledger
    targets: Mapping[str, InvoiceTarget]
    planner: Planner
    failures: FailureRecorder
    summary: RunSummary
    run_id: str
    now: Callable[[], datetime]
    fence: Fence | None = None
    """The run's lease claim; None only for tools that run outside a cycle."""
    source_label: str = DEAL_SOURCE
    """How messages to operators name the deal source (its connector's label)."""

    def __post_init__(self) -> None:
        self.recorder = Recorder(
            self.ledger, self.failures, self.summary, self.run_id, self.now, self._stop
        )
        self.customers = Customers(self.ledger, self.summary, self.fence, self._stop)
        self.triage = Triage(
            ledger=self.ledger,
            targets=self.targets,
            planner=self.planner,
            failures=self.failures,
            summary=self.summary,
            recorder=self.recorder,
            run_id=self.run_id,
            now=self.now,
            fence=self.fence,
            source_label=self.source_label,
        )

    def process(self, items: Iterable[Deal | ReadRejection]) -> None:
        """Triage a batch of deals, then invoice the accepted ones per target."""
        batch = [(item.id if isinstance(item, Deal) else item.deal_id, item) for item in items]
        known = KnownDeals.read(self.ledger, [deal_id for deal_id, _item in batch])
        for deal_id, item in batch:
            self.summary.count("deals_seen", 1)
            try:
                self.triage.item(item, known)
            finally:
                known.triaged(deal_id)
        jobs = self.triage.take_jobs()
        if len(jobs) <= 1:
            for target, batch_jobs in jobs.items():
                self.invoice(target, batch_jobs)
            return
        # One worker per target: the targets are invoiced at the same time,
        # each on its own batch path and inside its own client-side rate limits. The
        # workers share only the ledger (transactional) and the summary (locked).
        with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="invoice") as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, self.invoice, target, batch_jobs)
                for target, batch_jobs in jobs.items()
            ]
            for future in futures:
                future.result()  # re-raise anything unexpected in the caller

    # --- invoicing ---------------------------------------------------------------

    def invoice(self, target: str, jobs: Sequence[Job]) -> None:
        """Customers, look-ups and creates for one target's share of the batch."""
        if target in self.summary.stopped:
            self._not_attempted(target, jobs)
            return
        connector = self.targets[target]
        jobs = self._with_customers(connector, jobs)
        to_create: list[Job] = []
        adopted: list[tuple[Job, list[InvoiceRef]]] = []
        unfinished: dict[str, list[InvoiceRef]] = {}
        for job in jobs:
            if not job.recover:
                to_create.append(job)
                continue
            try:
                found = find_all(connector, job)
            except ConnectorError as error:
                self._failed(job, error)
                continue
            # A draft is an attempt that stopped half-way (a target that builds an
            # invoice in steps): only a finished invoice is adopted; create resumes it.
            finished = [ref for ref in found if ref.status != InvoiceStatus.DRAFT]
            if finished:
                adopted.append((job, finished))
            else:
                to_create.append(job)
                if found:  # handed to the create, which resumes the one with its key
                    unfinished[job.deal_id] = found
        if adopted:
            with self.ledger.fenced(self.fence):  # recorded before any create, at once
                for job, finished in adopted:
                    self.recorder.adopt(job, finished)
        if target in self.summary.stopped:
            self._not_attempted(target, to_create)
            return
        if not to_create:
            return
        self._before_vendor_write()
        try:
            outcomes: Mapping[str, InvoiceRef | ConnectorError] = connector.create_invoices(
                [job.draft for job in to_create], found=unfinished
            )
        except ConnectorError as error:
            outcomes = {job.deal_id: error for job in to_create}
        # One transaction for the whole batch's outcomes, all or nothing: a crash before
        # its commit leaves every intent open, and the next run looks each invoice up
        # and adopts it (see `Recorder.recorded`), exactly as for a crash between two
        # deals. Fenced: a run that lost its lease meanwhile records none of them.
        with self.ledger.fenced(self.fence):
            for job in to_create:
                result = outcomes.get(job.deal_id)
                if isinstance(result, InvoiceRef):
                    self.recorder.recorded(job, result, adopted=False)
                else:
                    self.recorder.failed(job, result or missing_outcome(target, job.deal_id))

    def _before_vendor_write(self) -> None:
        """Stop here if the run's lease is gone: the heartbeat's mark first (no read),
        then the ledger itself (one read; the heartbeat may not have woken yet after a
        freeze). Raises LeaseLost."""
        if self.fence is None:
            return
        self.fence.check()
        self.ledger.check_fence(self.fence)

    def _with_customers(self, connector: InvoiceTarget, jobs: Sequence[Job]) -> list[Job]:
        target = connector.target
        resolved = self.customers.resolve(connector, [job.draft.customer for job in jobs])
        kept: list[Job] = []
        for job in jobs:
            customer = resolved[job.draft.customer.account_id]
            if isinstance(customer, ConnectorError):
                self._failed(job, customer)
                continue
            draft = job.draft.model_copy(update={"customer": customer})
            kept.append(replace(job, draft=draft))
        if target in self.summary.stopped:
            return []
        return kept

    def _failed(self, job: Job, error: ConnectorError) -> None:
        with self.ledger.fenced(self.fence):
            self.recorder.failed(job, error)

    def _not_attempted(self, target: str, jobs: Sequence[Job]) -> None:
        """The target stopped (auth) before these were sent: queue them for next run.

        Their intents stay `invoicing`, so the retry looks them up before creating."""
        error = ConnectorError(
            system=target,
            error_class=ErrorClass.AUTH,
            code=CONNECTOR_STOPPED,
            message=self.summary.stopped[target],
        )
        for job in jobs:
            self._failed(job, error)

    def _stop(self, target: str, error: ConnectorError) -> bool:
        return self.summary.stop_if_refused(target, error, stage="invoice")
