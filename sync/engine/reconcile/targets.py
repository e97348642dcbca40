"""Ledger ↔ each target: read back the invoices we created (a bounded, rotating share
per pass, plus every invoice with an open discrepancy) and check each: gone
(``invoice_missing_in_target``), voided behind our back (``invoice_voided_out_of_band``),
total edited (``invoice_total_mismatch``), more than one live invoice for the deal
(``duplicate_invoice_for_deal``), and the invoice's money against the ledger's (see
money.py).

The target is the truth about what exists: a void or deletion found out of band and an
edited total are written into the ledger (status, total) and the deal's write-back is
queued, so balances, AR and the deal source are right while the discrepancy stays open for a
person to look at. When the target's money was read too, the correction records that
read (`Ledger.record_invoice_money`), so the ledger's money status follows. An invoice
that could not be read this pass keeps its rows open.

Totals are compared like with like: the intended total is pre-tax (the draft's lines),
so it is compared with the target's net; the ledger's total as the target returned it
at creation is gross, so it is compared with the target's gross. A taxed invoice is
never a mismatch for its tax.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from billsync.core.canonical import DiscrepancyKind, InvoiceMoney, InvoiceRef, InvoiceStatus
from billsync.core.money_state import MoneyStatus
from billsync.core.protocols import ConnectorError, ErrorClass, InvoiceTarget, PaymentFeed
from billsync.core.retrying import stops_connector
from billsync.sync.engine.money_sync import deal_state_for
from billsync.sync.engine.reconcile.money import check_money, state_of
from billsync.sync.engine.reconcile.readback import MoneyOutcome, candidates, outcomes
from billsync.sync.engine.reconcile.recorder import ACTOR, CHUNK
from billsync.sync.engine.reconcile.report import show
from billsync.sync.ledger.models import InvoiceRecord

if TYPE_CHECKING:
    from billsync.sync.engine.reconcile.recorder import Reconciler

SUSPICIOUS_ALL_MISSING = 3
"""If every invoice read from a target (at least this many) is not found, the connection
is more likely pointed at the wrong company or account than every invoice deleted."""

GONE = frozenset({InvoiceStatus.VOID.value, InvoiceStatus.DELETED.value})


class _Stop(Exception):
    """The target refused the credentials (it is stopped for the run) or is throttling:
    stop reading it this pass."""


class TargetPass:
    """Ledger ↔ one target: read back our invoices and check each against the ledger."""

    def __init__(
        self,
        rec: Reconciler,
        target: str,
        connector: InvoiceTarget,
        feed: PaymentFeed | None = None,
    ) -> None:
        self.rec = rec
        self.ledger = rec.ledger
        self.target = target
        self.connector = connector
        self.feed = feed
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
        invoices = candidates(self.rec, self.target)
        if self.feed is None:
            report.skipped.append(
                f"{self.target}: no payment feed, so invoice money was not compared"
            )
        try:
            for index, (invoice, outcome, money) in enumerate(
                outcomes(self.connector, self.feed, self.target, invoices), start=1
            ):
                self._check(invoice, outcome, money)
                if index % CHUNK == 0:
                    self.rec.heartbeat()
        except _Stop:
            pass
        self._missing()
        report.checked[self.target] = self.read

    # --- checks ------------------------------------------------------------------

    def _check(
        self, invoice: InvoiceRecord, outcome: InvoiceRef | ConnectorError, money: MoneyOutcome
    ) -> None:
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
        read = money if isinstance(money, InvoiceMoney) else None
        if isinstance(money, ConnectorError):
            self._failed(f"money of invoice {invoice.external_id} (deal {deal_id})", money)
        invoice = self._present(invoice, outcome, deal_id, read)
        if outcome.status == InvoiceStatus.VOID:
            invoice = self._voided(invoice, deal_id, read)
        else:
            invoice = self._total(invoice, outcome, deal_id, read)
        if read is not None:
            check_money(self.rec, self.target, invoice, read, deal_id)
        if invoice.status not in GONE:
            self.rec.read_deals[deal_id] = (self.target, invoice.external_id)
        duplicate = DiscrepancyKind.DUPLICATE_INVOICE_FOR_DEAL
        if outcome.status != InvoiceStatus.VOID or self.rec.open_row(
            duplicate, deal_id, self.target
        ):
            self._duplicates(deal_id)

    def _present(
        self, invoice: InvoiceRecord, ref: InvoiceRef, deal_id: str, read: InvoiceMoney | None
    ) -> InvoiceRecord:
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
        # truth about what exists (e.g. a payment void that was read as an invoice void).
        return self._correct(
            invoice, ref.status.value, invoice.total, deal_id, read=read, restore=True
        )

    def _voided(
        self, invoice: InvoiceRecord, deal_id: str, read: InvoiceMoney | None
    ) -> InvoiceRecord:
        kind = DiscrepancyKind.INVOICE_VOIDED_OUT_OF_BAND
        mismatch = DiscrepancyKind.INVOICE_TOTAL_MISMATCH
        self.rec.resolve(mismatch, deal_id, self.target, "the invoice is void")
        if invoice.status == InvoiceStatus.VOID.value:
            return invoice  # learned through a payment event, or recorded by an earlier pass
        self.rec.record(
            kind,
            deal_id,
            self.target,
            expected=invoice.status,
            actual=InvoiceStatus.VOID.value,
            details={
                "invoice": invoice.external_id,
                "number": invoice.number,
                "total": show(invoice.total, invoice.currency),
                "currency": invoice.currency,
                "note": "voided in the target, not through billsync; the ledger and the "
                "deal now show it void",
            },
        )
        return self._correct(invoice, InvoiceStatus.VOID.value, invoice.total, deal_id, read=read)

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
                    "total": show(invoice.total, invoice.currency),
                    "currency": invoice.currency,
                    "note": "deleted in the target, not through billsync; the ledger and "
                    "the deal now show it deleted",
                },
            )
            if invoice.status != InvoiceStatus.DELETED.value:
                self._correct(invoice, InvoiceStatus.DELETED.value, invoice.total, deal_id)

    def _total(
        self, invoice: InvoiceRecord, ref: InvoiceRef, deal_id: str, read: InvoiceMoney | None
    ) -> InvoiceRecord:
        """Like with like: an intended (pre-tax) total against the target's net, the
        ledger's gross total from creation against the target's gross."""
        kind = DiscrepancyKind.INVOICE_TOTAL_MISMATCH
        currency = invoice.currency
        opened = self.rec.open_row(kind, deal_id, self.target)
        if opened is not None:
            # Recorded with the draft's (pre-tax) total as expected.
            intended, pretax = _amount(opened.expected), True
        elif invoice.intended_total is not None:
            intended, pretax = invoice.intended_total, True
        elif invoice.net is not None:
            intended, pretax = invoice.net, True
        else:
            intended, pretax = invoice.total, False
        # Without a money read, the InvoiceRef's total (gross) is all there is.
        now = ref.total if read is None else (read.net if pretax else read.total)
        if intended is not None and now == intended:
            self.rec.resolve(kind, deal_id, self.target, "the total is as intended again")
        elif opened is None and intended is not None:
            basis = "before tax" if pretax else "including tax"
            self.rec.record(
                kind,
                deal_id,
                self.target,
                expected=f"{show(intended, currency)} {currency}",
                actual=f"{show(now, currency)} {currency}",
                details={
                    "invoice": invoice.external_id,
                    "currency": currency,
                    "compared": basis,
                    "note": "the total was changed in the target after billsync created it",
                },
            )
        target_total = read.total if read is not None else ref.total
        net_moved = read is not None and invoice.net is not None and read.net != invoice.net
        if target_total != invoice.total or net_moved:
            status = read.status.value if read is not None else invoice.status
            return self._correct(invoice, status, target_total, deal_id, read=read)
        return invoice

    def _duplicates(self, deal_id: str) -> None:
        kind = DiscrepancyKind.DUPLICATE_INVOICE_FOR_DEAL
        # Searched by what the invoice was created with (the stored DocNumber): a
        # reference that is not the target's default for the deal (a numbering scheme
        # changed since) would otherwise find nothing and hide a duplicate.
        record = self.ledger.get_deal(deal_id, self.target)
        reference = record.reference if record is not None else None
        try:
            found = self.connector.find_invoices(deal_id, reference=reference)
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
        read: InvoiceMoney | None = None,
        restore: bool = False,
    ) -> InvoiceRecord:
        """Make the ledger show what the target shows, and queue the deal's write-back.
        With the target's money read, that read is what is recorded."""
        if read is not None and read.status.value == status:
            updated = self.ledger.record_invoice_money(read).after
            self.ledger.set_deal_state(deal_id, self.target, deal_state_for(state_of(read).status))
        else:
            updated = self.ledger.upsert_invoice(
                target=self.target,
                external_id=invoice.external_id,
                currency=invoice.currency,
                total=total,
                status=status,
            )
            if status in GONE or restore:
                money_status = MoneyStatus(updated.money_status or MoneyStatus.OPEN)
                self.ledger.set_deal_state(deal_id, self.target, deal_state_for(money_status))
        changes = {
            "status": [invoice.status, status],
            "total": [show(invoice.total, invoice.currency), show(total, invoice.currency)],
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
        refused = stops_connector(error)
        if refused and self.rec.summary is not None:
            self.rec.summary.connector_stopped(self.target, error, stage="reconcile")
        # A throttled target is only left alone for the rest of this pass: reading back
        # is optional work, and the next pass continues where this one stopped.
        if refused or error.error_class is ErrorClass.RATE_LIMITED:
            raise _Stop(self.target)


def _amount(value: str | None) -> Decimal | None:
    """The amount in a shown value: "100.00 USD" (or "100.00", as older rows hold it)."""
    if not value:
        return None
    try:
        return Decimal(value.split()[0])
    except InvalidOperation:
        return None
