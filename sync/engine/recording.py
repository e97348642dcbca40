"""What the invoice stage writes after a vendor answered: the invoice, the deal's
state, the audit row, discrepancies, and failures for the retry queue.

Every write here happens inside the caller's fenced ledger block (`Ledger.fenced`), so
a run that lost its lease records nothing (DESIGN.md "Exactly once", fencing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from billsync.core import money
from billsync.core.canonical import Deal, DiscrepancyKind, InvoiceDraft, InvoiceRef, InvoiceStatus
from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, ErrorClass, InvoiceTarget
from billsync.sync.engine.failures import INVOICE, PERMANENT, FailureRecorder
from billsync.sync.engine.summary import RunSummary
from billsync.sync.engine.writeback import queue_writeback
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import AuditEntry, DealRecord, DealState, InvoiceRecord

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
    references: tuple[str | None, ...] = field(default=())
    """What earlier attempts were created with (the stored DocNumbers), searched on
    recovery besides the draft's own; None stands for "by the deal id"."""

    @property
    def target(self) -> str:
        return self.draft.target

    def lookups(self) -> tuple[str | None, ...]:
        """Every reference to search, the draft's first, each once."""
        wanted = (self.draft.doc_number, *self.references)
        return tuple(dict.fromkeys(wanted))

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
    def from_payload(
        cls, payload: dict[str, Any], fingerprint: str, reference: str | None = None
    ) -> Job:
        draft = InvoiceDraft.model_validate(payload["draft"])
        name = str(payload.get("deal_name") or "")
        return cls(draft.deal_id, name, draft, fingerprint, True, (reference,))


def find_all(connector: InvoiceTarget, job: Job) -> list[InvoiceRef]:
    """Every invoice for the deal under each reference it was (or is) sent with, once
    each, in the target's order (oldest first): what a job whose attempt may have
    reached the target looks up before anything is created."""
    found: dict[str, InvoiceRef] = {}
    for reference in job.lookups():
        for ref in connector.find_invoices(job.deal_id, reference=reference):
            found.setdefault(ref.external_id, ref)
    return list(found.values())


def oldest_first(found: Sequence[InvoiceRef]) -> list[InvoiceRef]:
    """A deterministic choice among several matches: live before voided, then oldest.
    Numeric ids count up (a target that numbers its records); other targets list
    oldest first (by creation time), so their order is kept."""
    numeric = all(ref.external_id.isdigit() for ref in found)

    def key(item: tuple[int, InvoiceRef]) -> tuple[int, int]:
        index, ref = item
        voided = int(ref.status in (InvoiceStatus.VOID, InvoiceStatus.DELETED))
        return (voided, int(ref.external_id) if numeric else index)

    return [ref for _index, ref in sorted(enumerate(found), key=key)]


@dataclass
class Recorder:
    ledger: Ledger
    failures: FailureRecorder
    summary: RunSummary
    run_id: str
    now: Callable[[], datetime]
    stop: Callable[[str, ConnectorError], bool]
    """Stops the target when the error is one that stops a connector; True if it did."""

    def adopt(self, job: Job, found: Sequence[InvoiceRef]) -> InvoiceRef:
        """Adopt one of the invoices a look-up found (live before voided, then oldest);
        the others are a `duplicate_invoice_for_deal` discrepancy."""
        ordered = oldest_first(found)
        if len(ordered) > 1:
            recorded = self.ledger.record_discrepancy(
                DiscrepancyKind.DUPLICATE_INVOICE_FOR_DEAL,
                job.deal_id,
                job.target,
                expected="1",
                actual=str(len(ordered)),
                details={
                    "adopted": ordered[0].external_id,
                    "invoices": [ref.external_id for ref in ordered],
                    "others": [ref.external_id for ref in ordered[1:]],
                },
            )
            self.summary.count("discrepancies", int(recorded))
        self.recorded(job, ordered[0], adopted=True)
        return ordered[0]

    def recorded(self, job: Job, ref: InvoiceRef, *, adopted: bool) -> None:
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
            due_date=ref.due_date or _due_date(job.draft, issued),
            account_id=job.draft.customer.account_id,
            customer_name=job.draft.customer.name,
            intended_total=job.draft.total,
            tax=ref.tax,
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
                "lines": len(job.draft.lines),
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

    def changed_after_invoice(self, deal: Deal, record: DealRecord, fingerprint: str) -> bool:
        """The deal's billing content changed after it was invoiced (on_deal_change: flag):
        a discrepancy that says what was invoiced and what the deal holds now, in amounts.
        The content hash goes in ``details["revision"]``: reconcile closes the row once
        the deal's invoice is at that revision (billsync.sync.engine.reconcile.closing)."""
        invoice = self.ledger.invoice_for_deal(deal.id, record.target)
        audit = self.ledger.audit_for(f"deal:{deal.id}")
        recorded = self.ledger.record_discrepancy(
            DiscrepancyKind.DEAL_CHANGED_AFTER_INVOICE,
            deal.id,
            record.target,
            expected=invoiced_content(invoice, invoiced_lines(audit, record)),
            actual=deal_content(deal),
            details={
                "invoice": record.external_invoice_id,
                "revision": fingerprint,
                "invoiced_revision": record.revision,
                "note": "the deal's amount, lines, currency or account changed after it "
                "was invoiced; the invoice was not changed (on_deal_change: flag)",
            },
        )
        self.summary.count("discrepancies", int(recorded))
        return recorded

    def routing_changed(self, job: Job, ref: InvoiceRef, routed_to: str) -> None:
        """The deal's invoice was found in its earlier target after it was routed to
        another: adopted there, never created again; ops see both targets."""
        recorded = self.ledger.record_discrepancy(
            DiscrepancyKind.ROUTING_CHANGED_AFTER_INVOICE,
            job.deal_id,
            job.target,
            expected=job.target,
            actual=routed_to,
            details={
                "invoice": ref.external_id,
                "invoiced_in": job.target,
                "routed_to": routed_to,
                "note": f"the deal is now routed to {routed_to}, but its invoice exists in "
                f"{job.target}; it was adopted there and not created in {routed_to}. To "
                f"move it: void it in {job.target}, run `billsync reconcile`, then "
                f"`billsync deals reroute {job.deal_id} --to {routed_to} --note ...`",
            },
        )
        self.summary.count("discrepancies", int(recorded))
        log.warning(
            "deal.routing_changed_after_invoice",
            deal_id=job.deal_id,
            target=job.target,
            routed_to=routed_to,
            invoice=ref.external_id,
        )

    def failed(self, job: Job, error: ConnectorError) -> None:
        error = error.with_context(deal_id=job.deal_id)
        deal_id, target = job.deal_id, job.target
        refused = self.stop(target, error)
        permanent = error.error_class in PERMANENT
        state = DealState.NEEDS_ATTENTION if permanent else DealState.FAILED
        if not refused:
            # After refused credentials the call never reached the target: the intent
            # stays `invoicing` and the next run looks it up before creating.
            self.ledger.set_deal_state(deal_id, target, state, last_error=error.message)
        if permanent:  # queued first, as in the stage's needs-attention path
            queue_writeback(self.ledger, deal_id, target, self.now(), error=error.message)
        self.failures.failed(INVOICE, deal_id, job.payload(), error, job.fingerprint)
        self.summary.count("needs_attention" if permanent else "failures", 1)


def deal_content(deal: Deal) -> str:
    """What an invoice of the deal would bill now, in the terms of `invoiced_content`:
    the lines' total before tax (what the draft is made of), and the deal's own amount
    when it says otherwise."""
    total = deal.lines_total()
    text = f"amount {_show(total, deal.currency)} {deal.currency}, {_lines(len(deal.lines))}"
    if deal.amount != total:
        text += f" (deal Amount {_show(deal.amount, deal.currency)})"
    return text


def invoiced_content(invoice: InvoiceRecord | None, lines: int | None) -> str:
    """What the deal's invoice billed: the draft's total before tax (the target's total
    with tax for invoices recorded before it was kept) and its line count when known."""
    if invoice is None:
        return "no invoice in the ledger"
    if invoice.intended_total is not None:
        text = f"amount {_show(invoice.intended_total, invoice.currency)} {invoice.currency}"
    else:
        text = f"total {_show(invoice.total, invoice.currency)} {invoice.currency} with tax"
    if lines is not None:
        text += f", {_lines(lines)}"
    return text + f" (invoice {invoice.number or invoice.external_id})"


def invoiced_lines(audit: Sequence[AuditEntry], record: DealRecord) -> int | None:
    """The line count the deal's invoice was created with, from its audit row."""
    for entry in reversed(audit):
        if (
            entry.action in ("invoice.created", "invoice.adopted")
            and entry.details.get("invoice") == record.external_invoice_id
            and isinstance(entry.details.get("lines"), int)
        ):
            return int(entry.details["lines"])
    return None


def _show(amount: Decimal, currency: str) -> str:
    """The currency's places (the ledger hands back 100 for 100.00)."""
    try:
        return format(money.to_currency_precision(amount, currency), "f")
    except money.MoneyError:
        return format(amount, "f")


def _lines(count: int) -> str:
    return "1 line" if count == 1 else f"{count} lines"


def _due_date(draft: InvoiceDraft, issued: date) -> date | None:
    """The due date the draft asked for, when the target did not say (the target's own,
    derived from its payment terms, comes first)."""
    if draft.due_date is not None:
        return draft.due_date
    if draft.days_until_due is not None:
        return issued + timedelta(days=draft.days_until_due)
    return None


def missing_outcome(target: str, deal_id: str) -> ConnectorError:
    return ConnectorError(
        system=target,
        error_class=ErrorClass.TRANSIENT,
        code="NO_OUTCOME",
        message=f"{target} returned no outcome for deal {deal_id}; it will be looked up "
        "and retried",
    )
