"""Open balances as of any date, from the ledger's invoices and payment facts.

The ledger stores each invoice's *current* balance; a report as of an earlier date
needs the balance *then*, so it is recomputed here from the payment rows, the same
way the ledger derives it (`sync/ledger/invoices.py`):

    balance at D = total − payments + refunds + chargebacks − chargeback reversals
                   − credit notes, counting the rows that happened before the end of D
                   (00:00 UTC the next day); voided payments never count.

An invoice is *receivable* on D when it was issued on or before D, its balance at D is
above zero, and its status is not void, deleted, draft or uncollectible. Status has no
history in the ledger, so an invoice written off today is excluded from AR at every
date (a documented limit: historical AR omits invoices written off since).
``issued`` falls back to the row's creation date and the due date to the issue date
(due on receipt) for rows that lack them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sync.ledger import Ledger
from sync.ledger.ar_reads import ArInvoice, Settlement
from sync.ledger.types import exact_sum

NOT_RECEIVABLE = frozenset({"void", "deleted", "draft", "uncollectible"})
NOT_SALES = frozenset({"void", "deleted", "draft"})
WRITTEN_OFF = "uncollectible"

# How each payment kind moves the balance (PaymentKind in sync/ledger/models.py): a
# credit note is not cash, but it settles the balance like a payment does.
REDUCES_BALANCE: dict[str, int] = {
    "payment": 1,
    "refund": -1,
    "chargeback": -1,
    "chargeback_reversal": 1,
    "credit": 1,
}


def end_of(day: date) -> datetime:
    """The first instant after ``day`` (UTC)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def due_date(invoice: ArInvoice) -> date:
    return invoice.due_date or invoice.issued


@dataclass
class Book:
    """Invoices issued by ``as_of`` and their settlement facts up to the end of it."""

    as_of: date
    invoices: list[ArInvoice]
    settlements: dict[tuple[str, str], list[Settlement]] = field(default_factory=dict)

    @classmethod
    def load(cls, ledger: Ledger, as_of: date, currency: str | None = None) -> Book:
        invoices = ledger.ar_invoices(as_of, currency=currency)
        by_invoice: dict[tuple[str, str], list[Settlement]] = defaultdict(list)
        for row in ledger.settlements(end_of(as_of), currency=currency):
            by_invoice[row.key].append(row)
        return cls(as_of, invoices, dict(by_invoice))

    def _effects(self, invoice: ArInvoice, day: date) -> list[Decimal]:
        cutoff = end_of(day)
        return [
            row.amount if REDUCES_BALANCE.get(row.kind, 0) > 0 else row.amount.copy_negate()
            for row in self.settlements.get(invoice.key, [])
            if row.occurred_at < cutoff and REDUCES_BALANCE.get(row.kind, 0) != 0
        ]

    def balance_at(self, invoice: ArInvoice, day: date) -> Decimal:
        settled = exact_sum(self._effects(invoice, day))
        return exact_sum([invoice.total, settled.copy_negate()])

    def receivable(self, invoice: ArInvoice, day: date) -> Decimal | None:
        """The open balance on ``day``, or None when the invoice is not receivable."""
        if invoice.status in NOT_RECEIVABLE or invoice.issued > day:
            return None
        balance = self.balance_at(invoice, day)
        return balance if balance > 0 else None

    def settled_on(self, invoice: ArInvoice) -> date | None:
        """The day of the payment (or credit) that settled the invoice: after it the
        balance is zero or less and stays so up to ``as_of``. None while open."""
        running = invoice.total
        settled: date | None = None
        for row in self.settlements.get(invoice.key, []):
            sign = REDUCES_BALANCE.get(row.kind, 0)
            if sign == 0:
                continue
            step = row.amount if sign > 0 else row.amount.copy_negate()
            running = exact_sum([running, step.copy_negate()])
            if running <= 0 and settled is None:
                settled = row.occurred_at.date()
            elif running > 0:
                settled = None  # a refund or chargeback reopened it
        return settled

    def currencies(self) -> list[str]:
        return sorted({invoice.currency for invoice in self.invoices})
