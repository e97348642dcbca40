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
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime

from billsync.core.canonical import Deal, InvoiceDraft, InvoiceRef, InvoiceStatus
from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, ErrorClass, InvoiceTarget, ReadRejection
from billsync.mappings.plan import Planner, Rejected, plan_invoice
from billsync.mappings.rejections import Rejection
from billsync.sync.engine import routing
from billsync.sync.engine.customers import Customers
from billsync.sync.engine.failures import FailureRecorder, rejected_before
from billsync.sync.engine.fingerprint import deal_fingerprint, full_fingerprint
from billsync.sync.engine.known import KnownDeals
from billsync.sync.engine.recording import Job, Recorder, missing_outcome
from billsync.sync.engine.summary import CONNECTOR_STOPPED, RunSummary
from billsync.sync.engine.writeback import queue_writeback
from billsync.sync.ledger import Fence, IntentConflict, Ledger
from billsync.sync.ledger.models import DealRecord, DealState, WorkStatus
from billsync.sync.planning import DEAL_SOURCE, read_rejection

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
    _jobs: dict[str, list[Job]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        self.recorder = Recorder(
            self.ledger, self.failures, self.summary, self.run_id, self.now, self._stop
        )
        self.customers = Customers(self.ledger, self.summary, self.fence, self._stop)

    # --- triage ------------------------------------------------------------------

    def process(self, items: Iterable[Deal | ReadRejection]) -> None:
        """Triage a batch of deals, then invoice the accepted ones per target."""
        batch = [(item.id if isinstance(item, Deal) else item.deal_id, item) for item in items]
        known = KnownDeals.read(self.ledger, [deal_id for deal_id, _item in batch])
        for deal_id, item in batch:
            self.summary.count("deals_seen", 1)
            try:
                self._triage_item(item, known)
            finally:
                known.triaged(deal_id)
        jobs, self._jobs = self._jobs, defaultdict(list)
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

    def _triage_item(self, item: Deal | ReadRejection, known: KnownDeals) -> None:
        if isinstance(item, Deal):
            self._triage(item, known)
        else:
            problem = read_rejection(item, self.source_label)
            name = item.deal_name
            with self.ledger.fenced(self.fence):
                if not self._shown_before(item.deal_id, problem.message(), known):
                    # The reason goes onto the deal, once: rewriting it would move
                    # the deal's revision stamp and bring it back on every run.
                    queue_writeback(
                        self.ledger,
                        item.deal_id,
                        None,
                        self.now(),
                        error=problem.message(),
                        deal_name=name,
                    )
                self.failures.rejected(item.deal_id, None, (problem,), None, deal_name=name)
            self.summary.count("needs_attention", 1)

    def _shown_before(self, deal_id: str, message: str, known: KnownDeals) -> bool:
        item = known.work(deal_id)
        return (
            item is not None
            and item.status == WorkStatus.DEAD
            and item.last_error_message == message
        )

    def _triage(self, deal: Deal, known: KnownDeals) -> None:
        fingerprint = deal_fingerprint(deal)
        records = known.records_of(deal.id)
        # Whatever became of the invoice since (paid, voided, disputed …), in whichever
        # target: such a deal is never planned again (`billsync deals reroute` moves it).
        invoiced = routing.invoiced(records)
        if invoiced is not None:
            if invoiced.revision != fingerprint:
                self._changed_after_invoice(deal, invoiced, fingerprint)
            return
        whole = full_fingerprint(deal)
        if self._rejected_before(deal.id, (whole, fingerprint), known):
            # Same content, same mapping, already rejected and shown on the deal:
            # nothing to redo (and no write-back that would move the revision stamp again).
            # One an operator resolved stays resolved: it needs no attention any more.
            work = known.work(deal.id)
            if work is not None and work.status == WorkStatus.DEAD:
                self.summary.count("needs_attention", 1)
            return
        outcome = plan_invoice(deal, self.planner)
        if isinstance(outcome, Rejected):
            self._needs_attention(
                deal.id, outcome.target, outcome.rejections, whole, known, deal_name=deal.name
            )
            return
        draft = outcome.draft
        for elsewhere in routing.unresolved_elsewhere(records, draft.target):
            if not self._resolve_elsewhere(deal, elsewhere, draft, fingerprint):
                return  # adopted there, or still unknown: nothing is created here
        record = known.deal(deal.id, draft.target)
        if record is not None and record.state == DealState.REROUTED:
            self._rerouted_away(deal, record, whole, known)
            return
        if record is not None and record.state == DealState.INVOICING:
            # A crash left the intent open: the invoice may exist. Same key and the same
            # reference it was sent with (the mapping may have changed since); look up.
            draft = draft.model_copy(
                update={
                    "idempotency_key": record.idempotency_key,
                    "doc_number": record.reference or draft.doc_number,
                }
            )
            self._jobs[draft.target].append(
                Job(deal.id, deal.name, draft, fingerprint, recover=True)
            )
            return
        recover = record is not None and record.state == DealState.FAILED
        try:
            intent = self.ledger.record_intent(
                deal.id,
                draft.target,
                fingerprint,
                draft.idempotency_key,
                reference=draft.doc_number,
                fence=self.fence,
            )
        except IntentConflict as conflict:
            # The ledger holds an invoice or an open intent this triage did not expect:
            # never risk a second invoice, and never stop the run for one deal.
            log.error(
                "deal.intent_conflict", deal_id=deal.id, target=draft.target, message=str(conflict)
            )
            self.summary.count("failures", 1)
            return
        draft = draft.model_copy(update={"idempotency_key": intent.idempotency_key})
        # A failed attempt may have created its invoice under its own reference.
        earlier = (record.reference or None,) if recover and record is not None else ()
        self._jobs[draft.target].append(
            Job(deal.id, deal.name, draft, fingerprint, recover=recover, references=earlier)
        )

    def _resolve_elsewhere(
        self, deal: Deal, record: DealRecord, draft: InvoiceDraft, fingerprint: str
    ) -> bool:
        """The deal's intent in ``record.target`` is unresolved while the deal is now
        routed to ``draft.target``: look it up there by the reference it was sent with.
        True (go on) only once it is confirmed absent and closed, audited."""
        routed_to, target = draft.target, record.target
        connector = self.targets.get(target)
        if connector is None:
            self._routing_blocked(
                deal.id,
                target,
                routed_to,
                f"{target} is not enabled, so it cannot be "
                f"looked up; enable it for one run (it adopts or closes the attempt)",
            )
            return False
        job = Job(
            deal.id,
            deal.name,
            draft.model_copy(
                update={
                    "target": target,
                    "idempotency_key": record.idempotency_key,
                    "doc_number": record.reference,
                }
            ),
            record.revision,
            recover=True,
        )
        try:
            found = self._find(connector, job)
        except ConnectorError as error:
            self._routing_blocked(deal.id, target, routed_to, f"its look-up failed: {error}")
            return False
        finished = [ref for ref in found if ref.status != InvoiceStatus.DRAFT]
        if finished:
            with self.ledger.fenced(self.fence):
                ref = self.recorder.adopt(job, finished)
                self.recorder.routing_changed(job, ref, routed_to)
            return False
        if found:  # a half-built draft: resumed by the retry in its own target
            self._routing_blocked(deal.id, target, routed_to, "a draft invoice exists there")
            return False
        with self.ledger.fenced(self.fence):
            routing.abandon(
                self.ledger,
                record,
                now_routed_to=routed_to,
                actor=f"run:{self.run_id}",
                fence=self.fence,
            )
        log.warning(
            "deal.intent_abandoned",
            deal_id=deal.id,
            target=target,
            routed_to=routed_to,
            reference=record.reference,
        )
        return True

    def _routing_blocked(self, deal_id: str, target: str, routed_to: str, why: str) -> None:
        log.error(
            "deal.routing_blocked",
            deal_id=deal_id,
            target=target,
            routed_to=routed_to,
            message=f"deal {deal_id} is now routed to {routed_to}, but an earlier attempt "
            f"in {target} is unresolved and {why}; nothing is created in {routed_to} "
            "until it is resolved",
        )
        self.summary.count("failures", 1)

    def _rerouted_away(
        self, deal: Deal, record: DealRecord, fingerprint: str, known: KnownDeals
    ) -> None:
        """An operator moved the deal away from this target, but its routing still
        points here: never billed here again by itself."""
        problem = Rejection(
            deal.id,
            "routing",
            f"the deal was rerouted away from {record.target} by an operator "
            f"({record.last_error}), but its routing still points to {record.target}",
            f"change the deal's routing, or run `billsync deals reroute {deal.id} --to "
            f"{record.target} --note ...` to bill it there again",
        )
        self._needs_attention(deal.id, None, (problem,), fingerprint, known, deal_name=deal.name)

    def _rejected_before(self, deal_id: str, revisions: tuple[str, str], known: KnownDeals) -> bool:
        """Permanently failed for this very content under this mapping (waiting, or
        resolved by an operator): a retry, a change to the deal or the mapping is what
        brings it back."""
        return rejected_before(known.work(deal_id), revisions, self.failures.mapping_hash)

    def _needs_attention(
        self,
        deal_id: str,
        target: str | None,
        rejections: tuple[Rejection, ...],
        fingerprint: str,
        known: KnownDeals,
        *,
        deal_name: str | None = None,
    ) -> None:
        with self.ledger.fenced(self.fence):
            if target is not None:
                record = known.deal(deal_id, target)
                if record is not None and record.state in _MAY_NEED_ATTENTION:
                    self.ledger.set_deal_state(
                        deal_id,
                        target,
                        DealState.NEEDS_ATTENTION,
                        last_error=rejections[0].message(),
                    )
            # The write-back is queued before the failure is recorded: once recorded, the
            # deal is not triaged again, so a crash in between must not lose the write-back.
            queue_writeback(
                self.ledger,
                deal_id,
                target,
                self.now(),
                error=rejections[0].message(),
                deal_name=deal_name,
            )
            self.failures.rejected(deal_id, target, rejections, fingerprint, deal_name=deal_name)
        self.summary.count("needs_attention", 1)

    def _changed_after_invoice(self, deal: Deal, record: DealRecord, fingerprint: str) -> None:
        with self.ledger.fenced(self.fence):
            recorded = self.recorder.changed_after_invoice(deal, record, fingerprint)
        if recorded:
            log.warning(
                "deal.changed_after_invoice",
                deal_id=deal.id,
                target=record.target,
                stage="invoice",
                invoice=record.external_invoice_id,
            )

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
                found = self._find(connector, job)
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

    def _find(self, connector: InvoiceTarget, job: Job) -> list[InvoiceRef]:
        """Every invoice for the deal under each reference it was (or is) sent with,
        once each, in the target's order (oldest first)."""
        found: dict[str, InvoiceRef] = {}
        for reference in job.lookups():
            for ref in connector.find_invoices(job.deal_id, reference=reference):
                found.setdefault(ref.external_id, ref)
        return list(found.values())

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


# A rejection moves these to needs-attention; an open intent (the create may have
# happened) and closed records keep their state.
_MAY_NEED_ATTENTION = frozenset({DealState.FAILED, DealState.NEEDS_ATTENTION})
