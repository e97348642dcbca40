"""Three-way reconciliation (DESIGN.md "Reconciliation"): Salesforce (what was sold) ↔
ledger (what we did) ↔ target (what exists).

One pass, in this order:
1. ledger only, no vendor call: closes what the run stages recorded once the ledger
   shows it no longer holds (an overpayment refunded, an unknown payment later applied,
   a changed deal invoiced at its new content), and finds deals the ledger holds with
   no invoice and no work that will make one (``closed_won_not_invoiced``);
2. ledger ↔ each target: reads back the invoices we created (a bounded, rotating share
   per pass) — gone (``invoice_missing_in_target``), voided behind our back
   (``invoice_voided_out_of_band``), total edited (``invoice_total_mismatch``), more
   than one live invoice for the deal (``duplicate_invoice_for_deal``), and payments
   the target shows but the ledger never heard of (payment gaps);
3. Salesforce ↔ ledger: won deals the pull has passed but the ledger never saw, when
   the deal source can list won deal ids (optional capability below);
4. write-back: invoiced deals whose latest money state is not on the deal
   (``writeback_stale``).

Rules for every check:
- a discrepancy is one open row per (kind, deal, target) until it no longer holds; it
  is resolved (actor ``reconcile``, audited) only by a check that looked and found the
  facts agree. An invoice that could not be read this pass keeps its rows open.
- the target is the truth about what exists: a void or deletion found out of band and
  an edited total are written into the ledger (status, total) and the deal's write-back
  is queued, so balances, AR and Salesforce are right while the discrepancy stays open
  for a person to look at.
- ``fix`` does only mechanical things: queue lost write-backs again and catch up
  payments the target shows (see `_catch_up`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import sqlalchemy as sa
from pydantic import ValidationError

from connectors.base import ConnectorError, Cursor, ErrorClass, InvoiceTarget, PaymentFeed
from sync import money
from sync.canonical import Discrepancy, DiscrepancyKind, InvoiceRef, InvoiceStatus, PaymentEvent
from sync.engine.failures import INVOICE, WRITEBACK, FailureRecorder
from sync.engine.payments import PaymentStage
from sync.engine.summary import RunSummary
from sync.engine.writeback import WriteBackSink, queue_writeback
from sync.ledger import Ledger
from sync.ledger.base import to_record
from sync.ledger.models import DealRecord, InvoiceRecord, PaymentKind, WorkStatus
from sync.ledger.models import Discrepancy as DiscrepancyRow
from sync.ledger.schema import deals, invoices, payments, work_items
from sync.logs import get_logger

if TYPE_CHECKING:
    from sync.engine.cycle import Engine

log = get_logger("billsync.engine")

ACTOR = "reconcile"
DEFAULT_LIMIT = 500
"""Invoices read back per target per pass; the next pass continues where this stopped."""
WRITEBACK_GRACE = timedelta(hours=1)
"""A queued write-back younger than this is on its way, not stale (webhooks queue
write-backs between runs)."""
CHUNK = 100  # ids per batched read, ledger query or heartbeat
SUSPICIOUS_ALL_MISSING = 3
"""If every invoice read from a target (at least this many) is not found, the connection
is more likely pointed at the wrong company or account than every invoice deleted."""

GONE = frozenset({InvoiceStatus.VOID.value, InvoiceStatus.DELETED.value})
ACCOUNTED = frozenset(
    status.value
    for status in (WorkStatus.PENDING, WorkStatus.LEASED, WorkStatus.DEAD, WorkStatus.RESOLVED)
)
"""Work-item statuses that account for a deal not being invoiced: queued, failing
(shown by `billsync failures`), or closed by an operator."""
WATCHED = (
    DiscrepancyKind.INVOICE_MISSING_IN_TARGET,
    DiscrepancyKind.INVOICE_VOIDED_OUT_OF_BAND,
    DiscrepancyKind.INVOICE_TOTAL_MISMATCH,
    DiscrepancyKind.DUPLICATE_INVOICE_FOR_DEAL,
)
"""Kinds whose invoices are read back every pass, outside the rotation, so they close
as soon as they stop holding."""

Key = tuple[str, str | None, str | None]
T = TypeVar("T")


# --- optional capabilities ---------------------------------------------------------


@runtime_checkable
class WonDealLister(Protocol):
    """A deal source that can list won deal ids cheaply (Salesforce: ``SELECT Id`` only)."""

    def won_deal_ids(self, up_to: Cursor) -> Iterator[str]:
        """Ids of every closed-won deal the pull has passed: those the incremental pull
        would not return from ``up_to`` (the stored deals watermark) because they sort
        at or before it. Deals changed since are the next pull's, not missing."""
        ...


@runtime_checkable
class InvoiceBatchReader(Protocol):
    """A target that reads many invoices per call (QBO: ``Id IN (…)``, 1,000 a query)."""

    def fetch_invoices(
        self, external_ids: Sequence[str]
    ) -> Mapping[str, InvoiceRef | ConnectorError]:
        """One outcome per id; a ConnectorError(not_found) for an id that is gone."""
        ...


@runtime_checkable
class InvoicePaymentReader(Protocol):
    """A payment feed that reads the money facts of one invoice (Stripe
    ``invoice_payments`` + refunds; QBO the Payments in the invoice's ``LinkedTxn``),
    with the same provider payment ids its events carry, so replays dedupe."""

    def payments_for_invoice(self, external_id: str) -> Sequence[PaymentEvent]: ...


# --- the report ----------------------------------------------------------------------


@dataclass(frozen=True)
class Fixed:
    """Something reconciliation changed or queued."""

    action: str  # ledger_corrected | writeback_queued | payments_applied
    deal_id: str | None
    target: str | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "deal_id": self.deal_id,
            "target": self.target,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class PaymentGap:
    """The target shows more paid or credited on an invoice than the ledger recorded."""

    target: str
    invoice: str
    deal_id: str | None
    currency: str
    ledger_settled: Decimal
    target_settled: Decimal
    fixed: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "invoice": self.invoice,
            "deal_id": self.deal_id,
            "currency": self.currency,
            "ledger_settled": _show(self.ledger_settled, self.currency),
            "target_settled": _show(self.target_settled, self.currency),
            "fixed": self.fixed,
            "detail": self.detail,
        }


@dataclass
class ReconcileReport:
    """What one pass found and did. Payment gaps are listed here rather than recorded:
    DiscrepancyKind has no kind for "the ledger missed a payment" (yet), and the gap is
    measured afresh on every pass anyway."""

    open: list[Discrepancy] = field(default_factory=list)
    recorded: int = 0
    resolved: list[Key] = field(default_factory=list)
    fixed: list[Fixed] = field(default_factory=list)
    payment_gaps: list[PaymentGap] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    """Per system: what could not be checked (its discrepancies stay as they were)."""
    skipped: list[str] = field(default_factory=list)
    """Checks not done this pass, and why."""
    checked: dict[str, int] = field(default_factory=dict)
    """Invoices read back per target."""

    def error(self, system: str, message: str) -> None:
        self.errors.setdefault(system, []).append(message)

    @property
    def exit_code(self) -> int:
        """1 while anything disagrees or could not be checked, else 0."""
        unfixed = any(not gap.fixed for gap in self.payment_gaps)
        return 1 if (self.open or unfixed or self.errors) else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "open": [d.model_dump(mode="json") for d in self.open],
            "fixed": [f.as_json() for f in self.fixed],
            "errors": self.errors,
            "payment_gaps": [g.as_json() for g in self.payment_gaps],
            "recorded": self.recorded,
            "resolved": [
                {"kind": kind, "deal_id": deal, "target": target}
                for kind, deal, target in self.resolved
            ],
            "skipped": self.skipped,
            "checked": self.checked,
        }


# --- the pass ------------------------------------------------------------------------


class _Stop(Exception):
    """The target answered auth or rate_limited: stop reading it this pass."""


def _noop() -> None:
    return None


@dataclass
class Reconciler:
    """One reconciliation pass (build one per pass; `run` fills ``report``)."""

    ledger: Ledger
    source: WriteBackSink
    targets: Mapping[str, InvoiceTarget]
    feeds: Mapping[str, PaymentFeed]
    now: Callable[[], datetime]
    fix: bool = False
    summary: RunSummary | None = None
    apply_payment: Callable[[PaymentEvent], None] | None = None
    """The payment stage's idempotent apply; needed for ``fix`` to catch up payments."""
    deals_cursor: Cursor | None = None
    """The pull's watermark: won deals at or before it must be known to the ledger."""
    limit: int = DEFAULT_LIMIT
    writeback_grace: timedelta = WRITEBACK_GRACE
    heartbeat: Callable[[], None] = _noop
    """Called between chunks of vendor reads (the cycle renews its lease here)."""
    report: ReconcileReport = field(default_factory=ReconcileReport)
    reads: _Reads = field(init=False, repr=False)
    _open: dict[Key, DiscrepancyRow] = field(init=False, repr=False, default_factory=dict)
    _queued: set[str] = field(init=False, repr=False, default_factory=set)

    def run(self) -> ReconcileReport:
        if self.limit < 1:
            raise ValueError("limit must be at least 1")
        self._open = {
            (row.kind, row.deal_id, row.target): row for row in self.ledger.open_discrepancies()
        }
        self.reads = _Reads(self.ledger.engine)
        log.info("reconcile.started", stage="reconcile", fix=self.fix)
        self._close_recorded_by_stages()
        self._unbilled_in_ledger()
        for target, connector in self.targets.items():
            _TargetPass(self, target, connector).run()
        self._won_deals()
        self._writebacks()
        self._collect_open()
        log.info(
            "reconcile.finished",
            stage="reconcile",
            open=len(self.report.open),
            recorded=self.report.recorded,
            resolved=len(self.report.resolved),
            fixed=len(self.report.fixed),
            errors=sum(len(v) for v in self.report.errors.values()),
        )
        return self.report

    # --- recording ---------------------------------------------------------------

    def open_row(self, kind: str, deal_id: str | None, target: str | None) -> DiscrepancyRow | None:
        return self._open.get((kind, deal_id, target))

    def open_rows(self, kind: str, target: str | None = None) -> list[DiscrepancyRow]:
        return [
            row
            for (k, _, t), row in self._open.items()
            if k == kind and (target is None or t == target)
        ]

    def record(
        self,
        kind: DiscrepancyKind,
        deal_id: str | None,
        target: str | None,
        expected: str | None,
        actual: str | None,
        details: dict[str, Any],
    ) -> None:
        if self.open_row(kind, deal_id, target) is not None:
            return
        if not self.ledger.record_discrepancy(kind, deal_id, target, expected, actual, details):
            return
        self.report.recorded += 1
        if self.summary is not None:
            self.summary.discrepancies += 1
        self._open[(kind, deal_id, target)] = DiscrepancyRow(
            id=0,
            kind=kind,
            deal_id=deal_id,
            target=target,
            expected=expected,
            actual=actual,
            details=details,
            detected_at=self.now(),
            resolved_at=None,
        )
        log.warning(
            "discrepancy.recorded",
            kind=str(kind),
            deal_id=deal_id,
            target=target,
            stage="reconcile",
            expected=expected,
            actual=actual,
        )

    def resolve(self, kind: str, deal_id: str | None, target: str | None, note: str) -> None:
        if self._open.pop((kind, deal_id, target), None) is None:
            return
        if self.ledger.resolve_discrepancy(kind, deal_id, target, actor=ACTOR, note=note):
            self.report.resolved.append((kind, deal_id, target))
            log.info(
                "discrepancy.resolved",
                kind=kind,
                deal_id=deal_id,
                target=target,
                stage="reconcile",
                note=note,
            )

    def queue_writeback(self, deal_id: str, target: str) -> None:
        queue_writeback(self.ledger, deal_id, target, self.now())
        self.queued(deal_id)

    def queued(self, deal_id: str) -> None:
        """This pass queued the deal's write-back: it is on its way, not stale."""
        self._queued.add(deal_id)

    def fixed(self, action: str, deal_id: str | None, target: str | None, detail: str) -> None:
        self.report.fixed.append(Fixed(action, deal_id, target, detail))

    # --- 1. ledger only ----------------------------------------------------------

    def _close_recorded_by_stages(self) -> None:
        for row in self.open_rows(DiscrepancyKind.OVERPAYMENT):
            if row.deal_id is None or row.target is None:
                continue
            invoice = self.ledger.invoice_for_deal(row.deal_id, row.target)
            if invoice is None or invoice.amount_paid <= invoice.total:
                self.resolve(
                    row.kind, row.deal_id, row.target, "amount paid no longer exceeds the total"
                )
        for row in self.open_rows(DiscrepancyKind.PAYMENT_FOR_UNKNOWN_INVOICE):
            payment = row.details.get("payment")
            if (
                row.target
                and payment
                and self.reads.applied_since(row.target, str(payment), row.detected_at)
            ):
                self.resolve(
                    row.kind, row.deal_id, row.target, f"payment {payment} applied to an invoice"
                )
        for row in self.open_rows(DiscrepancyKind.DEAL_CHANGED_AFTER_INVOICE):
            if row.deal_id is None or row.target is None:
                continue
            record = self.ledger.get_deal(row.deal_id, row.target)
            if record is None or record.external_invoice_id is None:
                self.resolve(row.kind, row.deal_id, row.target, "the deal has no invoice any more")
            elif row.actual is not None and record.revision == row.actual:
                self.resolve(
                    row.kind, row.deal_id, row.target, "the invoice matches the deal's content"
                )

    def _unbilled_in_ledger(self) -> None:
        """Deals the ledger holds without an invoice in any target, and without an open
        or operator-closed invoice work item: nothing will invoice them."""
        kind = DiscrepancyKind.CLOSED_WON_NOT_INVOICED
        holds: set[tuple[str, str]] = set()
        for record, work_status in self.reads.unbilled():
            if work_status in ACCOUNTED:
                continue
            holds.add((record.deal_id, record.target))
            note = (
                "an intent was recorded but a run stopped before its outcome; the next run "
                "that reads the deal looks it up in the target before creating"
                if record.state == "invoicing"
                else "the deal has no invoice and no work item will retry it"
            )
            self.record(
                kind,
                record.deal_id,
                record.target,
                expected="invoiced",
                actual=record.state,
                details={
                    "note": note,
                    "state": record.state,
                    "intent_at": record.intent_at.isoformat(),
                    "last_error": record.last_error,
                    "work_item": work_status,
                },
            )
        unseen = [row for row in self.open_rows(kind) if row.target is None and row.deal_id]
        seen = self.reads.seen([row.deal_id for row in unseen if row.deal_id])
        for row in self.open_rows(kind):
            if row.deal_id is None:
                continue
            if row.target is None:
                if row.deal_id in seen:
                    self.resolve(row.kind, row.deal_id, None, "the deal has reached billsync")
            elif (row.deal_id, row.target) not in holds:
                self.resolve(
                    row.kind, row.deal_id, row.target, "the deal is invoiced or its work is queued"
                )

    # --- 3. Salesforce ↔ ledger --------------------------------------------------

    def _won_deals(self) -> None:
        system = self.source.system
        if not isinstance(self.source, WonDealLister):
            self.report.skipped.append(
                f"{system}: the deal source cannot list won deal ids, so won deals that "
                "billsync never read were not looked for"
            )
            return
        if self.deals_cursor is None:
            self.report.skipped.append(f"{system}: no deals pulled yet; nothing to compare")
            return
        if system in self.stopped:
            self.report.error(system, f"not checked: stopped earlier in this run ({system})")
            return
        try:
            for chunk in _chunks(self.source.won_deal_ids(self.deals_cursor), CHUNK):
                seen = self.reads.seen(chunk)
                for deal_id in chunk:
                    if deal_id in seen:
                        continue
                    self.record(
                        DiscrepancyKind.CLOSED_WON_NOT_INVOICED,
                        deal_id,
                        None,
                        expected="invoiced",
                        actual="never read by billsync",
                        details={
                            "note": "won before the pull's watermark, but billsync has no "
                            "record of it; check the deal's stage history and the pull filter"
                        },
                    )
        except ConnectorError as error:
            self.report.error(system, f"won deals not listed: {error}")

    # --- 4. write-back -----------------------------------------------------------

    def _writebacks(self) -> None:
        kind = DiscrepancyKind.WRITEBACK_STALE
        cutoff = self.now() - self.writeback_grace
        holds: set[tuple[str, str]] = set()
        for row in self.reads.invoiced():
            key = (row.deal_id, row.target)
            if row.deal_id in self._queued:
                holds.add(key)  # queued by this pass: neither stale nor written yet
                continue
            reason = row.stale_reason(cutoff)
            if reason is None:
                if row.work_status in (WorkStatus.PENDING, WorkStatus.LEASED) and self.open_row(
                    kind, row.deal_id, row.target
                ):
                    holds.add(key)  # stale until written, however young the new attempt
                continue
            holds.add(key)
            self.record(
                kind,
                row.deal_id,
                row.target,
                expected=f"{row.status}, paid {_show(row.amount_paid, row.currency)}, "
                f"balance {_show(row.balance, row.currency)} {row.currency}",
                actual=reason,
                details={"invoice": row.external_id, "work_item": row.work_status},
            )
            if self.fix and row.work_status not in (WorkStatus.PENDING, WorkStatus.LEASED):
                self.queue_writeback(row.deal_id, row.target)
                self.fixed("writeback_queued", row.deal_id, row.target, f"was: {reason}")
        for open_row in self.open_rows(kind):
            if open_row.deal_id is None or open_row.target is None:
                continue
            if (open_row.deal_id, open_row.target) not in holds:
                self.resolve(
                    open_row.kind,
                    open_row.deal_id,
                    open_row.target,
                    "the deal shows the latest money state",
                )

    # --- report ------------------------------------------------------------------

    def _collect_open(self) -> None:
        for row in self.ledger.open_discrepancies():
            try:
                self.report.open.append(_canonical(row))
            except ValidationError as exc:
                self.report.error("ledger", f"discrepancy {row.id} cannot be shown: {exc}")

    @property
    def stopped(self) -> Mapping[str, str]:
        """Connectors stopped earlier in this run (or by this pass)."""
        return {} if self.summary is None else self.summary.stopped


# --- 2. ledger ↔ target ----------------------------------------------------------------


class _TargetPass:
    def __init__(self, rec: Reconciler, target: str, connector: InvoiceTarget) -> None:
        self.rec = rec
        self.ledger = rec.ledger
        self.target = target
        self.connector = connector
        self.missing: list[InvoiceRecord] = []
        self.read = 0

    def run(self) -> None:
        report = self.rec.report
        stopped = self.rec.stopped
        if self.target in stopped:
            report.error(
                self.target, f"not checked: stopped earlier in this run: {stopped[self.target]}"
            )
            return
        candidates = self._candidates()
        try:
            for index, (invoice, outcome) in enumerate(self._outcomes(candidates), start=1):
                self._check(invoice, outcome)
                if index % CHUNK == 0:
                    self.rec.heartbeat()
        except _Stop:
            pass
        self._missing()
        report.checked[self.target] = self.read

    # --- which invoices ----------------------------------------------------------

    def _candidates(self) -> list[InvoiceRecord]:
        watched: dict[str, InvoiceRecord] = {}
        for kind in WATCHED:
            for row in self.rec.open_rows(kind, self.target):
                invoice = row.deal_id and self.ledger.invoice_for_deal(row.deal_id, self.target)
                if invoice:
                    watched[invoice.external_id] = invoice
        budget = max(self.rec.limit - len(watched), 0)
        scanned = [i for i in self._rotate(budget) if i.external_id not in watched]
        return [*watched.values(), *scanned]

    def _rotate(self, budget: int) -> list[InvoiceRecord]:
        """Our invoices in external-id order, continuing after where the last pass
        stopped and wrapping around, so successive passes cover every invoice."""
        if budget == 0:
            return []
        name = f"reconcile.{self.target}.position"
        start = self.ledger.get_cursor(name) or ""
        picked = self.rec.reads.invoices(self.target, after=start, limit=budget)
        if len(picked) == budget:
            position = picked[-1].external_id
        elif not start:
            position = ""
        else:
            head = self.rec.reads.invoices(self.target, after="", limit=budget - len(picked))
            head = [i for i in head if i.external_id <= start]
            picked += head
            position = head[-1].external_id if head and len(picked) == budget else ""
        self.ledger.set_cursor(name, position)
        return picked

    def _outcomes(
        self, candidates: Sequence[InvoiceRecord]
    ) -> Iterator[tuple[InvoiceRecord, InvoiceRef | ConnectorError]]:
        connector = self.connector
        if isinstance(connector, InvoiceBatchReader):
            for chunk in _chunks(candidates, CHUNK):
                ids = [i.external_id for i in chunk]
                try:
                    found: Mapping[str, InvoiceRef | ConnectorError] = connector.fetch_invoices(ids)
                except ConnectorError as error:
                    found = {external_id: error for external_id in ids}
                for invoice in chunk:
                    yield invoice, found.get(invoice.external_id) or _no_answer(self.target)
            return
        for invoice in candidates:
            try:
                yield invoice, connector.fetch_invoice(invoice.external_id)
            except ConnectorError as error:
                yield invoice, error

    # --- checks ------------------------------------------------------------------

    def _check(self, invoice: InvoiceRecord, outcome: InvoiceRef | ConnectorError) -> None:
        if isinstance(outcome, ConnectorError):
            if outcome.error_class == ErrorClass.NOT_FOUND:
                self.read += 1
                self.missing.append(invoice)
            else:
                self._failed(f"invoice {invoice.external_id} (deal {invoice.deal_id})", outcome)
            return
        self.read += 1
        if outcome.status == InvoiceStatus.DELETED:
            self.missing.append(invoice)
            return
        deal_id = invoice.deal_id
        assert deal_id is not None  # the scan reads only invoices that name a deal
        invoice = self._present(invoice, outcome, deal_id)
        if outcome.status == InvoiceStatus.VOID:
            self._voided(invoice, deal_id)
        else:
            invoice = self._total(invoice, outcome, deal_id)
            self._settled(invoice, outcome, deal_id)
        duplicate = DiscrepancyKind.DUPLICATE_INVOICE_FOR_DEAL
        if outcome.status != InvoiceStatus.VOID or self.rec.open_row(
            duplicate, deal_id, self.target
        ):
            self._duplicates(deal_id)

    def _present(self, invoice: InvoiceRecord, ref: InvoiceRef, deal_id: str) -> InvoiceRecord:
        """The invoice exists: undo what an earlier pass (or a misread event) concluded."""
        missing = DiscrepancyKind.INVOICE_MISSING_IN_TARGET
        voided = DiscrepancyKind.INVOICE_VOIDED_OUT_OF_BAND
        self.rec.resolve(missing, deal_id, self.target, "the invoice exists in the target")
        if ref.status == InvoiceStatus.VOID:
            return invoice
        self.rec.resolve(voided, deal_id, self.target, "the invoice is no longer void")
        if invoice.status not in GONE:
            return invoice
        # The ledger says void or deleted, the target says it is live: the target is the
        # truth about what exists (e.g. a QBO payment void that was read as an invoice void).
        return self._correct(invoice, ref.status.value, invoice.total, deal_id, restore=True)

    def _voided(self, invoice: InvoiceRecord, deal_id: str) -> None:
        kind = DiscrepancyKind.INVOICE_VOIDED_OUT_OF_BAND
        mismatch = DiscrepancyKind.INVOICE_TOTAL_MISMATCH
        self.rec.resolve(mismatch, deal_id, self.target, "the invoice is void")
        if invoice.status == InvoiceStatus.VOID.value:
            return  # learned through a payment event, or recorded by an earlier pass
        self.rec.record(
            kind,
            deal_id,
            self.target,
            expected=invoice.status,
            actual=InvoiceStatus.VOID.value,
            details={
                "invoice": invoice.external_id,
                "number": invoice.number,
                "total": _show(invoice.total, invoice.currency),
                "currency": invoice.currency,
                "note": "voided in the target, not through billsync; the ledger and the "
                "deal now show it void",
            },
        )
        self._correct(invoice, InvoiceStatus.VOID.value, invoice.total, deal_id)

    def _missing(self) -> None:
        if not self.missing:
            return
        if len(self.missing) == self.read and self.read >= SUSPICIOUS_ALL_MISSING:
            self.rec.report.error(
                self.target,
                f"every one of the {self.read} invoices read back was not found: is billsync "
                f"connected to the right {self.target} company or account? Nothing was "
                "recorded for them",
            )
            return
        for invoice in self.missing:
            deal_id = invoice.deal_id
            assert deal_id is not None
            self.rec.resolve(
                DiscrepancyKind.INVOICE_TOTAL_MISMATCH, deal_id, self.target, "invoice is gone"
            )
            self.rec.record(
                DiscrepancyKind.INVOICE_MISSING_IN_TARGET,
                deal_id,
                self.target,
                expected=invoice.external_id,
                actual="not found",
                details={
                    "invoice": invoice.external_id,
                    "number": invoice.number,
                    "total": _show(invoice.total, invoice.currency),
                    "currency": invoice.currency,
                    "note": "deleted in the target, not through billsync; the ledger and "
                    "the deal now show it deleted",
                },
            )
            if invoice.status != InvoiceStatus.DELETED.value:
                self._correct(invoice, InvoiceStatus.DELETED.value, invoice.total, deal_id)

    def _total(self, invoice: InvoiceRecord, ref: InvoiceRef, deal_id: str) -> InvoiceRecord:
        kind = DiscrepancyKind.INVOICE_TOTAL_MISMATCH
        opened = self.rec.open_row(kind, deal_id, self.target)
        # The intended total: the draft's when the invoice stage recorded the mismatch,
        # else what the target showed when we created the invoice (the ledger's).
        intended = _decimal(opened.expected) if opened is not None else invoice.total
        if intended is not None and ref.total == intended:
            self.rec.resolve(kind, deal_id, self.target, "the total is as intended again")
        elif opened is None:
            self.rec.record(
                kind,
                deal_id,
                self.target,
                expected=_show(invoice.total, invoice.currency),
                actual=_show(ref.total, invoice.currency),
                details={
                    "invoice": invoice.external_id,
                    "currency": invoice.currency,
                    "note": "the total was changed in the target after billsync created it",
                },
            )
        if ref.total != invoice.total:
            return self._correct(invoice, invoice.status, ref.total, deal_id)
        return invoice

    def _settled(self, invoice: InvoiceRecord, ref: InvoiceRef, deal_id: str) -> None:
        """Money the target applied to the invoice that the ledger never recorded.

        Compared as "settled" (total − balance) on both sides: QBO reports no amount
        paid, only a balance that credit memos lower too. Refunds and disputes move
        money on the charge or a refund receipt, not the invoice's balance (Stripe and
        QBO alike), so the ledger side counts payments and credits before refunds.
        """
        if ref.balance is not None:
            target_settled = ref.total - ref.balance
        else:
            target_settled = ref.amount_paid or Decimal(0)
        if target_settled <= invoice.total - invoice.balance:
            return
        ledger_settled = self._gross_settled(invoice)
        if target_settled <= ledger_settled:
            return
        fixed, detail = self._catch_up(invoice, deal_id, target_settled)
        self.rec.report.payment_gaps.append(
            PaymentGap(
                target=self.target,
                invoice=invoice.external_id,
                deal_id=deal_id,
                currency=invoice.currency,
                ledger_settled=ledger_settled,
                target_settled=target_settled,
                fixed=fixed,
                detail=detail,
            )
        )

    def _gross_settled(self, invoice: InvoiceRecord) -> Decimal:
        rows = self.ledger.payments_for_invoice(self.target, invoice.external_id)
        counted = (PaymentKind.PAYMENT.value, PaymentKind.CREDIT.value)
        live = (row.amount for row in rows if row.kind in counted and row.voided_at is None)
        return sum(live, Decimal(0))

    def _catch_up(
        self, invoice: InvoiceRecord, deal_id: str, target_settled: Decimal
    ) -> tuple[bool, str]:
        """Read the invoice's payments from its feed and apply them like the payment
        stage does (same provider payment ids, so a later webhook or poll of the same
        payment is a no-op).

        Why not rewind the feed cursor: cursors are opaque to the engine, QBO's feed
        reads "no cursor" as "from now" (it would catch nothing), both feeds reach back
        only 30 days, and the ledger cannot store "no cursor". A work item for the
        payment stage would need the same per-invoice read to do anything, so the read
        is done here, once, under the run lease.
        """
        if not self.rec.fix:
            return False, "run billsync reconcile --fix to read its payments from the target"
        feed = self.rec.feeds.get(self.target)
        if not isinstance(feed, InvoicePaymentReader) or self.rec.apply_payment is None:
            return False, (
                f"the {self.target} feed cannot read one invoice's payments; the next "
                "webhook or poll that names them will apply them"
            )
        try:
            events = feed.payments_for_invoice(invoice.external_id)
        except ConnectorError as error:
            self.rec.report.error(self.target, f"payments of {invoice.external_id}: {error}")
            return False, f"reading its payments failed: {error.message}"
        for event in events:
            self.rec.apply_payment(event)
        self.rec.queued(deal_id)  # apply queued the deal's write-back
        after = self.ledger.get_invoice(self.target, invoice.external_id)
        settled = self._gross_settled(after) if after is not None else Decimal(0)
        self.rec.fixed(
            "payments_applied",
            deal_id,
            self.target,
            f"{len(events)} payment facts read for invoice {invoice.external_id}",
        )
        if settled >= target_settled:
            return True, f"caught up from {len(events)} payment facts"
        return False, f"still short after applying {len(events)} payment facts"

    def _duplicates(self, deal_id: str) -> None:
        kind = DiscrepancyKind.DUPLICATE_INVOICE_FOR_DEAL
        try:
            found = self.connector.find_invoices(deal_id)
        except ConnectorError as error:
            self._failed(f"invoices of deal {deal_id}", error)
            return
        live = [ref.external_id for ref in found if ref.status.value not in GONE]
        if len(live) > 1:
            self.rec.record(
                kind,
                deal_id,
                self.target,
                expected="1",
                actual=str(len(live)),
                details={"invoices": live, "note": "void the extra invoices in the target"},
            )
        else:
            self.rec.resolve(kind, deal_id, self.target, "one live invoice for the deal")

    # --- ledger corrections and errors -------------------------------------------

    def _correct(
        self,
        invoice: InvoiceRecord,
        status: str,
        total: Decimal,
        deal_id: str,
        *,
        restore: bool = False,
    ) -> InvoiceRecord:
        """Make the ledger show what the target shows, and queue the deal's write-back."""
        updated = self.ledger.upsert_invoice(
            target=self.target,
            external_id=invoice.external_id,
            currency=invoice.currency,
            total=total,
            status=status,
        )
        if status in GONE:
            self.ledger.set_deal_state(deal_id, self.target, "voided")
        elif restore:
            self.ledger.set_deal_state(deal_id, self.target, _deal_state(updated))
        changes = {
            "status": [invoice.status, status],
            "total": [_show(invoice.total, invoice.currency), _show(total, invoice.currency)],
        }
        self.ledger.append_audit(
            ACTOR,
            "invoice.corrected",
            f"deal:{deal_id}",
            {"target": self.target, "invoice": invoice.external_id, **changes},
        )
        self.rec.queue_writeback(deal_id, self.target)
        what = ", ".join(
            f"{name} {old} → {new}" for name, (old, new) in changes.items() if old != new
        )
        self.rec.fixed(
            "ledger_corrected", deal_id, self.target, f"invoice {invoice.external_id}: {what}"
        )
        return updated

    def _failed(self, what: str, error: ConnectorError) -> None:
        self.rec.report.error(self.target, f"{what}: {error}")
        if error.error_class in (ErrorClass.AUTH, ErrorClass.RATE_LIMITED):
            if self.rec.summary is not None:
                self.rec.summary.stopped.setdefault(self.target, error.message)
                if error.error_class == ErrorClass.AUTH:
                    self.rec.summary.auth_failed.add(self.target)
            log.error(
                "connector.stopped",
                target=self.target,
                stage="reconcile",
                error_class=str(error.error_class),
                code=error.code,
                message=error.message,
            )
            raise _Stop(self.target)


# --- ledger reads --------------------------------------------------------------------


@dataclass(frozen=True)
class _Invoiced:
    """An invoiced deal with its invoice and its write-back item, if any."""

    deal_id: str
    target: str
    external_id: str
    status: str
    currency: str
    amount_paid: Decimal
    balance: Decimal
    invoice_updated_at: datetime
    work_status: str | None
    work_updated_at: datetime | None
    work_error: str | None

    def stale_reason(self, cutoff: datetime) -> str | None:
        """Why the deal may not show the latest money state, or None."""
        status, at = self.work_status, self.work_updated_at
        if status is None or at is None:
            return "never queued"
        if status == WorkStatus.DEAD:
            return f"failed and gave up: {self.work_error or 'no error recorded'}"
        if status in (WorkStatus.PENDING, WorkStatus.LEASED):
            if self.work_error:
                return f"failing, will retry: {self.work_error}"
            if at < cutoff:
                return f"queued since {at.isoformat()} and not written"
            return None
        if status == WorkStatus.DONE and self.invoice_updated_at > at:
            return (
                f"money state changed at {self.invoice_updated_at.isoformat()}, after the "
                f"last write-back at {at.isoformat()}"
            )
        return None  # done and current, or resolved by an operator


class _Reads:
    """Read-only queries the Ledger facade has no method for (yet). Each is a short
    read, paged by key like ``DealStore.deals_in_state``, so no transaction stays open
    while the pass calls vendors."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def invoices(self, target: str, *, after: str, limit: int) -> list[InvoiceRecord]:
        """Invoices billsync made for deals in ``target``, by external id after ``after``."""
        query = (
            sa.select(invoices)
            .where(
                invoices.c.target == target,
                invoices.c.deal_id.is_not(None),
                invoices.c.external_id > after,
            )
            .order_by(invoices.c.external_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [to_record(InvoiceRecord, row) for row in conn.execute(query)]

    def unbilled(self) -> Iterator[tuple[DealRecord, str | None]]:
        """Deal rows of deals with no invoice in any target, with the status of the
        deal's invoice work item (None: there is none)."""
        billed = sa.select(deals.c.deal_id).where(deals.c.external_invoice_id.is_not(None))
        work = work_items.alias("work")
        query = (
            sa.select(deals, work.c.status.label("work_status"))
            .outerjoin(work, sa.and_(work.c.kind == INVOICE, work.c.key == deals.c.deal_id))
            .where(deals.c.external_invoice_id.is_(None), deals.c.deal_id.not_in(billed))
        )
        for row in self._paged(query, (deals.c.deal_id, deals.c.target)):
            yield to_record(DealRecord, row), row.work_status

    def seen(self, deal_ids: Sequence[str]) -> set[str]:
        """Which of these deals the ledger knows: a deal row, or an invoice work item
        (a deal rejected before it had a target has only the latter)."""
        if not deal_ids:
            return set()
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(deals.c.deal_id).where(deals.c.deal_id.in_(deal_ids)))
            found = {str(r.deal_id) for r in rows}
            items = conn.execute(
                sa.select(work_items.c.key).where(
                    work_items.c.kind == INVOICE, work_items.c.key.in_(deal_ids)
                )
            )
            found.update(str(r.key) for r in items)
        return found

    def applied_since(self, provider: str, payment_id: str, since: datetime) -> bool:
        """True when this provider payment was recorded against an invoice after ``since``
        (as ``<id>`` or, when it settles several invoices, ``<id>:…``)."""
        query = sa.select(payments.c.id).where(
            payments.c.provider == provider,
            sa.or_(
                payments.c.provider_payment_id == payment_id,
                payments.c.provider_payment_id.startswith(f"{payment_id}:", autoescape=True),
            ),
            payments.c.recorded_at > since,
        )
        with self._engine.connect() as conn:
            return conn.execute(query.limit(1)).first() is not None

    def invoiced(self) -> Iterator[_Invoiced]:
        work = work_items.alias("work")
        query = (
            sa.select(
                deals.c.deal_id,
                deals.c.target,
                invoices.c.external_id,
                invoices.c.status,
                invoices.c.currency,
                invoices.c.amount_paid,
                invoices.c.balance,
                invoices.c.updated_at.label("invoice_updated_at"),
                work.c.status.label("work_status"),
                work.c.updated_at.label("work_updated_at"),
                work.c.last_error_message.label("work_error"),
            )
            .join(
                invoices,
                sa.and_(
                    invoices.c.target == deals.c.target,
                    invoices.c.external_id == deals.c.external_invoice_id,
                ),
            )
            .outerjoin(work, sa.and_(work.c.kind == WRITEBACK, work.c.key == deals.c.deal_id))
        )
        for row in self._paged(query, (deals.c.deal_id, deals.c.target)):
            yield _Invoiced(**row._mapping)

    def _paged(
        self, query: sa.Select[Any], key: tuple[sa.Column[str], sa.Column[str]]
    ) -> Iterator[sa.Row[Any]]:
        after: tuple[str, str] | None = None
        while True:
            page = query
            if after is not None:
                page = page.where(sa.tuple_(*key) > sa.tuple_(*after))
            with self._engine.connect() as conn:
                rows = conn.execute(page.order_by(*key).limit(CHUNK * 5)).all()
            yield from rows
            if len(rows) < CHUNK * 5:
                return
            last = rows[-1]._mapping
            after = (str(last[key[0].name]), str(last[key[1].name]))


# --- entry point ---------------------------------------------------------------------


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
    from sync.engine.cycle import DEALS_CURSOR, LEASE_TTL, RUN_LEASE

    ledger = engine.ledger
    summary = summary or RunSummary(f"reconcile-{uuid.uuid4()}")
    failures = FailureRecorder(
        ledger,
        engine.policy,
        mapping_hash=engine.mapping.digest,
        run_id=summary.run_id,
        holder=engine.holder,
        now=engine.now,
    )
    payment_stage = PaymentStage(ledger, engine.feeds, failures, summary, engine.holder, engine.now)

    def heartbeat() -> None:
        ledger.renew_lease(RUN_LEASE, engine.holder, LEASE_TTL)

    return Reconciler(
        ledger=ledger,
        source=engine.source,
        targets=engine.targets,
        feeds=engine.feeds,
        now=engine.now,
        fix=fix,
        summary=summary,
        apply_payment=payment_stage.apply,
        deals_cursor=ledger.get_cursor(DEALS_CURSOR),
        limit=limit,
        heartbeat=heartbeat,
    ).run()


# --- helpers -------------------------------------------------------------------------


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _show(amount: Decimal, currency: str) -> str:
    """An amount as people read it: the currency's places (the ledger hands back 100
    for 100.00)."""
    try:
        return format(money.to_currency_precision(amount, currency), "f")
    except money.MoneyError:
        return format(amount, "f")


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def _no_answer(target: str) -> ConnectorError:
    return ConnectorError(
        system=target,
        error_class=ErrorClass.TRANSIENT,
        code="NO_OUTCOME",
        message="the batched read returned nothing for this invoice; it is read again next pass",
    )


def _deal_state(invoice: InvoiceRecord) -> str:
    """The deal's state from its invoice's settled facts (as the payment stage sets it,
    without the per-event states it alone can know)."""
    if invoice.status in GONE:
        return "voided"
    if invoice.status == InvoiceStatus.UNCOLLECTIBLE.value:
        return "uncollectible"
    if invoice.status == InvoiceStatus.PAID.value or invoice.balance <= 0:
        return "paid"
    if invoice.amount_paid > 0:
        return "partially_paid"
    return "invoiced"


def _canonical(row: DiscrepancyRow) -> Discrepancy:
    details = dict(row.details)
    invoice = details.get("invoice")
    note = details.pop("note", None)
    facts = ", ".join(
        f"{name} {value}"
        for name, value in details.items()
        if value not in (None, "", []) and name != "raw"
    )
    detail = "; ".join(part for part in (str(note or ""), facts) if part)
    return Discrepancy(
        kind=DiscrepancyKind(row.kind),
        deal_id=row.deal_id,
        target=row.target,
        external_id=invoice if isinstance(invoice, str) else None,
        expected=row.expected,
        actual=row.actual,
        detail=detail,
        detected_at=row.detected_at,
        resolved_at=row.resolved_at,
    )
