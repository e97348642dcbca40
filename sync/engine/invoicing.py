"""Map, validate and invoice deals exactly once (DESIGN.md run cycle steps 3–4).

For each deal, in this order:
1. a deal already invoiced for any target is never invoiced again: if its billing
   content changed, that is a `deal_changed_after_invoice` discrepancy (on_deal_change
   flag, the default);
2. the planner maps and validates it; a rejection is a needs-attention item naming the
   deal, the field and the fix;
3. the intent (deal, target, content revision, idempotency key) is committed to the
   ledger BEFORE any vendor call;
4. a deal whose earlier attempt may have reached the target (intent still `invoicing`
   after a crash, or `failed` after a timeout) is first looked up in the target by its
   deal reference and adopted if found; only otherwise is it created, with the SAME key;
5. the outcome is recorded: invoice row, deal state, audit row, a total that differs
   from the draft becomes a discrepancy; failures go to the retry queue.

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
from datetime import date, datetime, timedelta
from typing import Any

from connectors.base import ConnectorError, ErrorClass, InvoiceTarget
from mappings.plan import Planner, Rejected, plan_invoice
from mappings.rejections import Rejection
from sync.canonical import (
    Customer,
    Deal,
    DiscrepancyKind,
    InvoiceDraft,
    InvoiceRef,
    InvoiceStatus,
)
from sync.engine.failures import INVOICE, PERMANENT, FailureRecorder
from sync.engine.fingerprint import deal_fingerprint, full_fingerprint
from sync.engine.known import KnownDeals
from sync.engine.summary import RunSummary
from sync.engine.writeback import queue_writeback
from sync.ledger import IntentConflict, Ledger
from sync.ledger.models import DealRecord, DealState, WorkStatus
from sync.logs import get_logger
from sync.planning import READ_FIX, ReadRejection

log = get_logger("billsync.engine")


@dataclass(frozen=True)
class Job:
    """One invoice to create (or find) for one deal in one target."""

    deal_id: str
    deal_name: str
    draft: InvoiceDraft
    fingerprint: str
    recover: bool
    """True when an earlier attempt may have created the invoice: look up first."""

    @property
    def target(self) -> str:
        return self.draft.target

    def payload(self) -> dict[str, object]:
        """What the retry queue keeps, so a retry needs no new read of the deal."""
        return {
            "deal_id": self.deal_id,
            "target": self.target,
            "stage": "invoice",
            "deal_name": self.deal_name,
            "draft": self.draft.model_dump(mode="json"),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], fingerprint: str) -> Job:
        draft = InvoiceDraft.model_validate(payload["draft"])
        return cls(draft.deal_id, str(payload.get("deal_name") or ""), draft, fingerprint, True)


@dataclass
class InvoiceStage:
    ledger: Ledger
    targets: Mapping[str, InvoiceTarget]
    planner: Planner
    failures: FailureRecorder
    summary: RunSummary
    run_id: str
    now: Callable[[], datetime]
    _jobs: dict[str, list[Job]] = field(default_factory=lambda: defaultdict(list))

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
        # One worker per target: QuickBooks and Stripe are invoiced at the same time,
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
            problem = Rejection(item.deal_id, item.field, item.reason, READ_FIX)
            name = getattr(item, "deal_name", None)  # optional on the protocol
            if not self._shown_before(item.deal_id, problem.message(), known):
                # The reason goes onto the deal, once: rewriting it would bump
                # SystemModstamp and bring the deal back on every run.
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

    def _invoiced_record(self, deal_id: str, known: KnownDeals) -> DealRecord | None:
        """The deal's record that holds its invoice, whatever became of the invoice since
        (paid, voided, disputed …): such a deal is never planned again."""
        for target in self.targets:
            record = known.deal(deal_id, target)
            if record is not None and record.external_invoice_id is not None:
                return record
        return None

    def _shown_before(self, deal_id: str, message: str, known: KnownDeals) -> bool:
        item = known.work(deal_id)
        return (
            item is not None
            and item.status == WorkStatus.DEAD
            and item.last_error_message == message
        )

    def _triage(self, deal: Deal, known: KnownDeals) -> None:
        fingerprint = deal_fingerprint(deal)
        invoiced = self._invoiced_record(deal.id, known)
        if invoiced is not None:
            if invoiced.revision != fingerprint:
                self._changed_after_invoice(deal, invoiced, fingerprint)
            return
        whole = full_fingerprint(deal)
        if self._rejected_before(deal.id, (whole, fingerprint), known):
            # Same content, same mapping, already rejected and shown on the deal:
            # nothing to redo (and no write-back that would bump SystemModstamp again).
            self.summary.count("needs_attention", 1)
            return
        outcome = plan_invoice(deal, self.planner)
        if isinstance(outcome, Rejected):
            self._needs_attention(
                deal.id, outcome.target, outcome.rejections, whole, known, deal_name=deal.name
            )
            return
        draft = outcome.draft
        record = known.deal(deal.id, draft.target)
        if record is not None and record.state == DealState.INVOICING:
            # A crash left the intent open: the invoice may exist. Same key, look up first.
            draft = draft.model_copy(update={"idempotency_key": record.idempotency_key})
            self._jobs[draft.target].append(
                Job(deal.id, deal.name, draft, fingerprint, recover=True)
            )
            return
        recover = record is not None and record.state == DealState.FAILED
        try:
            intent = self.ledger.record_intent(
                deal.id, draft.target, fingerprint, draft.idempotency_key
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
        self._jobs[draft.target].append(
            Job(deal.id, deal.name, draft, fingerprint, recover=recover)
        )

    def _rejected_before(self, deal_id: str, revisions: tuple[str, str], known: KnownDeals) -> bool:
        """Permanently failed for this very content under this mapping: an operator's
        retry or a change to the deal or the mapping is what brings it back."""
        item = known.work(deal_id)
        return (
            item is not None
            and item.status == WorkStatus.DEAD
            and item.last_error_class in (ErrorClass.INVALID_DATA, ErrorClass.NOT_FOUND)
            and item.revision in revisions
            and item.mapping_hash == self.failures.mapping_hash
        )

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
        if target is not None:
            record = known.deal(deal_id, target)
            if record is not None and record.state != DealState.INVOICING:
                self.ledger.set_deal_state(
                    deal_id, target, DealState.NEEDS_ATTENTION, last_error=rejections[0].message()
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
        recorded = self.ledger.record_discrepancy(
            DiscrepancyKind.DEAL_CHANGED_AFTER_INVOICE,
            deal.id,
            record.target,
            expected=record.revision,
            actual=fingerprint,
            details={
                "invoice": record.external_invoice_id,
                "note": "the deal's amount, lines, currency or account changed after it "
                "was invoiced; the invoice was not changed (on_deal_change: flag)",
            },
        )
        if recorded:
            self.summary.count("discrepancies", 1)
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
        for job in jobs:
            if not job.recover:
                to_create.append(job)
                continue
            try:
                found = connector.find_invoices(job.deal_id)
            except ConnectorError as error:
                self._failed(job, error)
                continue
            # A draft is an attempt that stopped half-way (Stripe builds an invoice in
            # steps): only a finished invoice is adopted; create resumes the draft.
            finished = [ref for ref in found if ref.status != InvoiceStatus.DRAFT]
            if finished:
                adopted.append((job, finished))
            else:
                to_create.append(job)
        if adopted:
            with self.ledger.batch():  # recorded before any create, in one transaction
                for job, finished in adopted:
                    self._adopt(job, finished)
        if target in self.summary.stopped:
            self._not_attempted(target, to_create)
            return
        if not to_create:
            return
        try:
            outcomes: Mapping[str, InvoiceRef | ConnectorError] = connector.create_invoices(
                [job.draft for job in to_create]
            )
        except ConnectorError as error:
            outcomes = {job.deal_id: error for job in to_create}
        # One transaction for the whole batch's outcomes, all or nothing: a crash before
        # its commit leaves every intent open, and the next run looks each invoice up
        # and adopts it (see `_recorded`), exactly as for a crash between two deals.
        with self.ledger.batch():
            for job in to_create:
                result = outcomes.get(job.deal_id)
                if isinstance(result, InvoiceRef):
                    self._recorded(job, result, adopted=False)
                else:
                    self._failed(job, result or _missing_outcome(target, job.deal_id))

    def _with_customers(self, connector: InvoiceTarget, jobs: Sequence[Job]) -> list[Job]:
        target = connector.target
        resolved: dict[str, Customer | ConnectorError] = self._customers_in_batch(
            connector, [job.draft.customer for job in jobs]
        )
        kept: list[Job] = []
        for job in jobs:
            wanted = job.draft.customer
            account = wanted.account_id
            if account not in resolved:
                resolved[account] = self._customer(connector, wanted)
            customer = resolved[account]
            if isinstance(customer, ConnectorError):
                self._failed(job, customer)
                continue
            draft = job.draft.model_copy(update={"customer": customer})
            kept.append(replace(job, draft=draft))
        if target in self.summary.stopped:
            return []
        return kept

    def _customers_in_batch(
        self, connector: InvoiceTarget, wanted: Sequence[Customer]
    ) -> dict[str, Customer | ConnectorError]:
        """Linked customers from the ledger; the rest in one batch where the target has
        one (QBO `ensure_customers`: a few queries and batch creates, not one call each)."""
        target = connector.target
        resolved: dict[str, Customer | ConnectorError] = {}
        unlinked: dict[str, Customer] = {}
        links = self.ledger.linked_customers(target, [customer.account_id for customer in wanted])
        for customer in wanted:
            linked = links.get(customer.account_id)
            if linked is not None:
                resolved[customer.account_id] = customer.model_copy(update={"external_id": linked})
            else:
                unlinked.setdefault(customer.account_id, customer)
        batch = getattr(connector, "ensure_customers", None)
        if not unlinked or batch is None or target in self.summary.stopped:
            return resolved
        try:
            outcomes = batch(list(unlinked.values()))
        except ConnectorError as error:
            if error.error_class == ErrorClass.AUTH:
                self._stop(target, error)
            return {**resolved, **{account: error for account in unlinked}}
        with self.ledger.batch():
            for account, outcome in outcomes.items():
                if isinstance(outcome, Customer) and outcome.external_id:
                    self.ledger.link_customer(target, account, outcome.external_id, outcome.name)
                elif isinstance(outcome, ConnectorError) and outcome.error_class == ErrorClass.AUTH:
                    self._stop(target, outcome)
                resolved[account] = outcome
        return resolved

    def _customer(self, connector: InvoiceTarget, wanted: Customer) -> Customer | ConnectorError:
        target = connector.target
        linked = self.ledger.customer_link(target, wanted.account_id)
        if linked is not None:
            return wanted.model_copy(update={"external_id": linked})
        if target in self.summary.stopped:
            return ConnectorError(
                system=target, error_class=ErrorClass.AUTH, message=self.summary.stopped[target]
            )
        try:
            customer = connector.ensure_customer(wanted)
        except ConnectorError as error:
            if error.error_class == ErrorClass.AUTH:
                self._stop(target, error)
            return error
        if customer.external_id:
            self.ledger.link_customer(
                target, wanted.account_id, customer.external_id, customer.name
            )
        return customer

    def _adopt(self, job: Job, found: Sequence[InvoiceRef]) -> None:
        if len(found) > 1:
            recorded = self.ledger.record_discrepancy(
                DiscrepancyKind.DUPLICATE_INVOICE_FOR_DEAL,
                job.deal_id,
                job.target,
                expected="1",
                actual=str(len(found)),
                details={"invoices": [ref.external_id for ref in found]},
            )
            self.summary.count("discrepancies", int(recorded))
        self._recorded(job, found[0], adopted=True)

    def _recorded(self, job: Job, ref: InvoiceRef, *, adopted: bool) -> None:
        deal_id, target = job.deal_id, job.target
        issued = job.draft.issue_date or self.now().date()  # undated drafts are dated today
        self.ledger.upsert_invoice(
            target=ref.target,
            external_id=ref.external_id,
            currency=ref.currency,
            total=ref.total,
            status=str(ref.status),
            deal_id=deal_id,
            number=ref.number,
            url=ref.url,
            issue_date=issued,
            due_date=_due_date(job.draft, issued),
            account_id=job.draft.customer.account_id,
            customer_name=job.draft.customer.name,
            intended_total=job.draft.total,
        )
        action = "invoice.adopted" if adopted else "invoice.created"
        self.ledger.append_audit(
            f"run:{self.run_id}",
            action,
            f"deal:{deal_id}",
            {
                "target": target,
                "invoice": ref.external_id,
                "number": ref.number,
                "total": format(ref.total, "f"),
                "currency": ref.currency,
                "idempotency_key": job.draft.idempotency_key,
            },
        )
        queue_writeback(self.ledger, deal_id, target, self.now())
        # Like with like: the draft's total is pre-tax; the target adds its tax.
        if ref.net != job.draft.total:
            recorded = self.ledger.record_discrepancy(
                DiscrepancyKind.INVOICE_TOTAL_MISMATCH,
                deal_id,
                target,
                expected=f"{format(job.draft.total, 'f')} {ref.currency}",
                actual=f"{format(ref.net, 'f')} {ref.currency}",
                details={
                    "invoice": ref.external_id,
                    "currency": ref.currency,
                    "tax": format(ref.tax or 0, "f"),
                },
            )
            self.summary.count("discrepancies", int(recorded))
        # Last, as the commit point: a process killed before this line leaves the intent
        # open, so the next run looks the invoice up, adopts it and records the above
        # again (upserts; the audit gains an "adopted" row); after it, nothing is undone.
        self.ledger.set_deal_state(
            deal_id,
            target,
            DealState.INVOICED,
            external_invoice_id=ref.external_id,
            revision=job.fingerprint,
            last_error=None,
        )
        self.failures.succeeded(INVOICE, deal_id)
        if adopted:
            self.summary.count("invoices_adopted", 1)
        else:
            self.summary.count("invoices_created", 1)
        log.info(
            action,
            deal_id=deal_id,
            target=target,
            stage="invoice",
            invoice=ref.external_id,
            total=format(ref.total, "f"),
        )

    def _failed(self, job: Job, error: ConnectorError) -> None:
        error = error.with_context(deal_id=job.deal_id)
        deal_id, target = job.deal_id, job.target
        if error.error_class == ErrorClass.AUTH:
            self._stop(target, error)
        permanent = error.error_class in PERMANENT
        state = DealState.NEEDS_ATTENTION if permanent else DealState.FAILED
        if error.error_class != ErrorClass.AUTH:
            # After an auth failure the call never reached the target: the intent stays
            # `invoicing` and the next run looks it up before creating.
            self.ledger.set_deal_state(deal_id, target, state, last_error=error.message)
        if permanent:  # queued first, as in _needs_attention
            queue_writeback(self.ledger, deal_id, target, self.now(), error=error.message)
        self.failures.failed(INVOICE, deal_id, job.payload(), error, job.fingerprint)
        self.summary.count("needs_attention" if permanent else "failures", 1)

    def _not_attempted(self, target: str, jobs: Sequence[Job]) -> None:
        """The target stopped (auth) before these were sent: queue them for next run.

        Their intents stay `invoicing`, so the retry looks them up before creating."""
        error = ConnectorError(
            system=target,
            error_class=ErrorClass.AUTH,
            code="CONNECTOR_STOPPED",
            message=self.summary.stopped[target],
        )
        for job in jobs:
            self._failed(job, error)

    def _stop(self, target: str, error: ConnectorError) -> None:
        if error.error_class == ErrorClass.AUTH and error.code != "CONNECTOR_STOPPED":
            self.summary.auth_failed.add(target)
        if target not in self.summary.stopped:
            self.summary.stopped[target] = error.message
            log.error(
                "connector.stopped",
                target=target,
                stage="invoice",
                error_class=str(error.error_class),
                code=error.code,
                message=error.message,
            )


def _due_date(draft: InvoiceDraft, issued: date) -> date | None:
    """The due date the draft asked for, for AR aging. None when the target derives it
    from a named term (QuickBooks SalesTermRef): the ledger does not know its days."""
    if draft.due_date is not None:
        return draft.due_date
    if draft.days_until_due is not None:
        return issued + timedelta(days=draft.days_until_due)
    return None


def _missing_outcome(target: str, deal_id: str) -> ConnectorError:
    return ConnectorError(
        system=target,
        error_class=ErrorClass.TRANSIENT,
        code="NO_OUTCOME",
        message=f"{target} returned no outcome for deal {deal_id}; it will be looked up "
        "and retried",
    )
