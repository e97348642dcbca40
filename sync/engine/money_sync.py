"""Bring the ledger's copy of invoices in line with their target (DESIGN.md "Money model").

Feeds and webhooks only say *that* something changed: each `PaymentEvent` is a hint
naming an invoice and/or a payment. `MoneySync.settle` turns a batch of hints into the
set of billsync's invoices they concern — the invoice named, plus every invoice that
holds (or held) a fact of the payment named, so a payment that was edited, moved to
another invoice or deleted re-reads the invoice it used to pay — reads each once from
the target (`PaymentFeed.read_invoice_money`), and records the read. The money a hint
reports is never believed: a signed event that claims 999,999.99 paid on a 100.00
invoice changes nothing unless the target says so.

Consequences of a recorded change, in one place: the deal's state follows the money
status, the deal's write-back is queued, and an overpayment is a discrepancy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from billsync.core.canonical import DiscrepancyKind, InvoiceMoney, InvoiceStatus, PaymentEvent
from billsync.core.logs import get_logger
from billsync.core.money_state import MoneyStatus
from billsync.core.protocols import PaymentFeed
from billsync.sync.engine.summary import RunSummary
from billsync.sync.engine.writeback import queue_writeback
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.invoice_money import MoneyChange
from billsync.sync.ledger.models import DealState, InvoiceRecord

log = get_logger("billsync.engine")

READ_CHUNK = 100
"""Invoices read from a target per call of read_invoice_money."""


def deal_state_for(status: MoneyStatus) -> str:
    """The deal's state for one target, from its invoice's money status."""
    return str(DealState.INVOICED) if status is MoneyStatus.OPEN else status.value


@dataclass
class MoneySync:
    ledger: Ledger
    summary: RunSummary
    now: Callable[[], datetime]

    def settle(self, feed: PaymentFeed, hints: Iterable[PaymentEvent]) -> int:
        """Re-read and record every invoice of ours the hints concern; returns how many
        invoices changed. Raises ConnectorError when a read fails (nothing after the
        failed chunk is recorded; the caller keeps its cursor or inbox claim)."""
        wanted: dict[str, None] = {}
        for hint in hints:
            found = self._invoices_of(hint)
            if not found and hint.invoice_external_id is None:
                self._unknown_invoice(hint)
            wanted.update(dict.fromkeys(found))
        return self.refresh(feed, list(wanted))

    def refresh(self, feed: PaymentFeed, external_ids: Sequence[str]) -> int:
        """Read these invoices from the target and record them (billsync's only)."""
        ours = [i for i in external_ids if self.ledger.get_invoice(feed.provider, i)]
        changed = 0
        for start in range(0, len(ours), READ_CHUNK):
            chunk = ours[start : start + READ_CHUNK]
            reads = feed.read_invoice_money(chunk)
            for external_id in chunk:
                money = reads.get(external_id) or self._gone(feed.provider, external_id)
                if money is None:
                    continue
                changed += self.record(money)
        return changed

    def record(self, money: InvoiceMoney) -> int:
        """Record one read and apply its consequences; 1 when the deal's money moved."""
        change = self.ledger.record_invoice_money(money)
        if not change.changed:
            return 0
        self.summary.payments_applied += 1
        self._consequences(change)
        return 1

    def _invoices_of(self, hint: PaymentEvent) -> list[str]:
        found = [hint.invoice_external_id] if hint.invoice_external_id else []
        if hint.provider_payment_id:
            # Fact ids are "<target object id>[:<qualifier>…]" (MoneyFact): every invoice
            # holding a fact of that object is re-read.
            source_object = hint.provider_payment_id.split(":", 1)[0]
            found += self.ledger.invoices_with_fact(hint.provider, source_object)
        return found

    def _gone(self, target: str, external_id: str) -> InvoiceMoney | None:
        """The read of an invoice the target no longer has: deleted, nothing applied."""
        stored = self.ledger.get_invoice(target, external_id)
        if stored is None:
            return None
        zero = stored.total * 0
        return InvoiceMoney(
            target=target,
            external_id=external_id,
            currency=stored.currency,
            status=InvoiceStatus.DELETED,
            net=stored.net if stored.net is not None else stored.total,
            tax=stored.tax if stored.tax is not None else zero,
            total=stored.total,
        )

    def _consequences(self, change: MoneyChange) -> None:
        invoice = change.after
        state = change.state
        log.info(
            "invoice.money_changed",
            deal_id=invoice.deal_id,
            target=invoice.target,
            stage="payments",
            invoice=invoice.external_id,
            status=state.status.value,
            paid=format(state.paid, "f"),
            balance=format(state.balance_due, "f"),
        )
        if invoice.deal_id is None:
            return
        if state.overpaid > 0:
            self._overpaid(invoice, change)
        self.ledger.set_deal_state(invoice.deal_id, invoice.target, deal_state_for(state.status))
        queue_writeback(self.ledger, invoice.deal_id, invoice.target, self.now())

    def _overpaid(self, invoice: InvoiceRecord, change: MoneyChange) -> None:
        # what came in against the invoice: applied, credited, and held unapplied
        received = change.state.paid + change.state.credited + change.state.unapplied
        recorded = self.ledger.record_discrepancy(
            DiscrepancyKind.OVERPAYMENT,
            invoice.deal_id,
            invoice.target,
            expected=f"{format(change.state.total, 'f')} {invoice.currency}",
            actual=f"{format(received, 'f')} {invoice.currency}",
            details={
                "invoice": invoice.external_id,
                "currency": invoice.currency,
                "overpaid": format(change.state.overpaid, "f"),
            },
        )
        self.summary.discrepancies += int(recorded)

    def _unknown_invoice(self, hint: PaymentEvent) -> None:
        if hint.amount <= 0:
            return  # a deleted payment billsync never saw: nothing to report
        recorded = self.ledger.record_discrepancy(
            DiscrepancyKind.PAYMENT_FOR_UNKNOWN_INVOICE,
            None,
            hint.provider,
            expected=None,
            actual=f"{format(hint.amount, 'f')} {hint.currency}",
            details={
                "event": hint.event_id,
                "payment": hint.provider_payment_id,
                "currency": hint.currency,
                "kind": str(hint.kind),
                "raw": json.dumps({"occurred_at": hint.occurred_at.isoformat()}),
            },
        )
        self.summary.discrepancies += int(recorded)


def by_provider(hints: Iterable[PaymentEvent]) -> Mapping[str, list[PaymentEvent]]:
    grouped: dict[str, list[PaymentEvent]] = {}
    for hint in hints:
        grouped.setdefault(hint.provider, []).append(hint)
    return grouped
