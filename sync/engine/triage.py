"""Triage: what becomes of each deal of a batch before any vendor call (DESIGN.md run
cycle step 3, `invoicing` steps 1–4).

A deal already invoiced in any target is never planned again (a changed one is a
discrepancy); a rejected one is shown once on the deal and waits; an intent still
unresolved in another target is resolved there first (`routing`); otherwise the intent
is committed to the ledger and the deal becomes a `Job` for its target — to create, or
to look up first when an earlier attempt may have reached the target. `InvoiceStage`
takes the jobs per target (`take_jobs`) and invoices them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from billsync.core.canonical import Deal, InvoiceDraft, InvoiceStatus
from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, InvoiceTarget, ReadRejection
from billsync.mappings.plan import Planner, Rejected, plan_invoice
from billsync.mappings.rejections import Rejection
from billsync.sync.engine import routing
from billsync.sync.engine.failures import FailureRecorder, rejected_before
from billsync.sync.engine.fingerprint import deal_fingerprint, full_fingerprint
from billsync.sync.engine.known import KnownDeals
from billsync.sync.engine.recording import Job, Recorder, find_all
from billsync.sync.engine.summary import RunSummary
from billsync.sync.engine.writeback import queue_writeback
from billsync.sync.ledger import Fence, IntentConflict, Ledger
from billsync.sync.ledger.models import DealRecord, DealState, WorkStatus
from billsync.sync.planning import DEAL_SOURCE, read_rejection

log = get_logger("billsync.engine")

# A rejection moves these to needs-attention; an open intent (the create may have
# happened) and closed records keep their state.
_MAY_NEED_ATTENTION = frozenset({DealState.FAILED, DealState.NEEDS_ATTENTION})


@dataclass
class Triage:
    """Triages one batch's deals into jobs per target; `InvoiceStage` owns one."""

    ledger: Ledger
    targets: Mapping[str, InvoiceTarget]
    planner: Planner
    failures: FailureRecorder
    summary: RunSummary
    recorder: Recorder
    run_id: str
    now: Callable[[], datetime]
    fence: Fence | None = None
    source_label: str = DEAL_SOURCE
    """How messages to operators name the deal source (its connector's label)."""
    _jobs: dict[str, list[Job]] = field(default_factory=lambda: defaultdict(list))

    def take_jobs(self) -> dict[str, list[Job]]:
        """The jobs triaged since the last call, per target (and forget them)."""
        jobs, self._jobs = self._jobs, defaultdict(list)
        return jobs

    def item(self, item: Deal | ReadRejection, known: KnownDeals) -> None:
        """Triage one deal of the batch (or the source's rejection of one)."""
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
            found = find_all(connector, job)
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
