"""Write the money state back onto the deals (DESIGN.md run cycle step 6).

Work comes from the queue: the invoice stage queues a write-back for every deal it
invoices (and for every deal that needs attention, so the reason shows on the deal);
the payment stage queues one whenever an invoice's money changes. Only queued deals are
written, so unchanged deals are never rewritten. Writes go out in the source's batches
(`DealSource.write_back`); per-deal failures go back to the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from billsync.core.canonical import DealWriteBack, InvoiceStatus, MoneyFact
from billsync.core.logs import get_logger
from billsync.core.money_state import billing_status, derive, last_payment_date
from billsync.core.protocols import ConnectorError, DealSource
from billsync.sync.engine.failures import WRITEBACK, FailureRecorder
from billsync.sync.engine.summary import RunSummary
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import InvoiceRecord, WorkItem

log = get_logger("billsync.engine")

LEASE_FOR = timedelta(minutes=10)
CHUNK = 2000


@dataclass
class WriteBackStage:
    ledger: Ledger
    sink: DealSource
    failures: FailureRecorder
    summary: RunSummary
    holder: str
    now: Callable[[], datetime]

    def run(self) -> None:
        if self.sink.system in self.summary.stopped:
            return
        while True:
            items = self.ledger.lease_due_work(
                self.now(), CHUNK, self.holder, LEASE_FOR, kinds=(WRITEBACK,)
            )
            if not items:
                return
            self._write(items)
            if len(items) < CHUNK or self.sink.system in self.summary.stopped:
                return

    def _write(self, items: list[WorkItem]) -> None:
        updates: list[DealWriteBack] = []
        errors: dict[str, str] = {}
        by_deal: dict[str, WorkItem] = {}
        with self.ledger.batch(write=False):  # one connection for the chunk's reads
            for item in items:
                payload = item.payload
                deal_id = str(payload["deal_id"])
                by_deal[deal_id] = item
                if payload.get("error"):
                    errors[deal_id] = str(payload["error"])
                update = self._state_of(deal_id, payload.get("target"))
                if update is not None:
                    updates.append(update)
        try:
            failed = self.sink.write_back(updates, errors)
        except ConnectorError as whole:
            failed = {deal_id: whole for deal_id in by_deal}
            self.summary.stop_if_refused(self.sink.system, whole, stage="writeback")
        with self.ledger.batch():  # the chunk's outcomes in one transaction
            for deal_id, item in by_deal.items():
                problem = failed.get(deal_id)
                if problem is None:
                    self.ledger.complete_work(item.id, holder=self.holder)
                    self.summary.writebacks += 1
                else:
                    self.failures.failed(WRITEBACK, deal_id, dict(item.payload), problem, None)
                    self.summary.failures += 1

    def _state_of(self, deal_id: str, target: Any) -> DealWriteBack | None:
        if not target:
            return None
        invoice = self.ledger.invoice_for_deal(deal_id, str(target))
        if invoice is None:
            return None
        facts = self.ledger.invoice_facts(invoice.target, invoice.external_id)
        return deal_writeback(deal_id, invoice, facts)


def deal_writeback(deal_id: str, invoice: InvoiceRecord, facts: list[MoneyFact]) -> DealWriteBack:
    """What the deal shows for its invoice: the ledger's mirror of the target's money."""
    zero = invoice.total * 0
    return DealWriteBack(
        deal_id=deal_id,
        target=invoice.target,
        invoice_external_id=invoice.external_id,
        invoice_number=invoice.number,
        invoice_url=invoice.url,
        status=_status(invoice.status),
        billing_status=billing_status(_money_status(invoice, facts)).value,
        currency=invoice.currency,
        amount_paid=invoice.amount_paid,
        balance=invoice.balance,
        amount_refunded=invoice.refunded if invoice.refunded is not None else zero,
        amount_credited=invoice.credited if invoice.credited is not None else zero,
        tax=invoice.tax,
        total=invoice.total,
        due_date=invoice.due_date,
        last_payment_date=last_payment_date(facts),
    )


def _money_status(invoice: InvoiceRecord, facts: list[MoneyFact]) -> str:
    """The stored money status; a row not read since migration 0006 has none yet, and
    gets the same derivation over its stored facts until its next read."""
    if invoice.money_status is not None:
        return invoice.money_status
    total = invoice.total
    state = derive(
        currency=invoice.currency,
        document_status=_status(invoice.status),
        net=total,
        tax=total * 0,
        total=total,
        facts=facts,
    )
    return state.status.value


def _status(value: str) -> InvoiceStatus:
    try:
        return InvoiceStatus(value)
    except ValueError:
        return InvoiceStatus.OPEN


def queue_writeback(
    ledger: Ledger,
    deal_id: str,
    target: str | None,
    now: datetime,
    *,
    error: str | None = None,
    deal_name: str | None = None,
) -> None:
    payload: dict[str, Any] = {"deal_id": deal_id, "target": target, "stage": "writeback"}
    if deal_name:
        payload["deal_name"] = deal_name
    if error:
        payload["error"] = error[:1000]
    ledger.enqueue(WRITEBACK, deal_id, payload, now)
