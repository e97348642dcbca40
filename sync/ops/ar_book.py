"""Each invoice's money as of any date, from the ledger's mirror of its target.

The ledger holds what the target shows now: the invoice's figures as
`billsync.core.money_state.derive` computed them at its last read, and the target's facts
(payments, credits, refunds, disputes) with their dates. The reports take an
invoice's money on day X from the ledger's figures when every fact of the invoice
happened by the end of X (the usual case for today's report) and otherwise from
`derive` over the facts that had happened by then. A row never derived (written
before migration 0006) is derived from its stored facts. No figure is computed here:
balance, open AR, disputes and write-offs are the derivation's (its rules are in
`billsync/core/money_state.py`: a refund or a dispute does not reopen a balance; a written-off,
voided or deleted invoice is not open AR).

An invoice is *receivable* on D when it was issued on or before D, is not a draft,
and its open AR at the end of D is above zero. The ledger keeps the document's
status, not its history: an invoice written off or voided today is out of AR at every
date, and a credit note voided today counts at no date (a documented limit).
``issued`` falls back to the row's creation date and the due date to the issue date
(due on receipt) for rows that lack them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from billsync.core import money
from billsync.core.canonical import MoneyFact, MoneyFactKind
from billsync.core.money_state import MoneyState, derive
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.ar_reads import ArInvoice

NOT_SALES = frozenset({"void", "deleted", "draft"})
NOT_ISSUED = "draft"


def end_of(day: date) -> datetime:
    """The first instant after ``day`` (UTC)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def due_date(invoice: ArInvoice) -> date:
    return invoice.due_date or invoice.issued


@dataclass
class Book:
    """Invoices issued by ``as_of`` and their live facts (all of them: a fact after
    ``as_of`` tells the book that the ledger's figures are newer than the day)."""

    as_of: date
    invoices: list[ArInvoice]
    facts: dict[tuple[str, str], list[MoneyFact]] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        ledger: Ledger,
        as_of: date,
        currency: str | None = None,
        *,
        connection: str | None = None,
    ) -> Book:
        """The book of one currency and/or one connection (None: all of them)."""
        invoices = ledger.ar_invoices(as_of, currency=currency, target=connection)
        return cls(as_of, invoices, ledger.ar_facts(currency=currency, target=connection))

    def known(self, invoice: ArInvoice, day: date) -> list[MoneyFact]:
        """The invoice's facts that had happened by the end of ``day``, oldest first."""
        cutoff = end_of(day)
        return [f for f in self.facts.get(invoice.key, []) if f.occurred_at < cutoff]

    def state_at(self, invoice: ArInvoice, day: date) -> MoneyState:
        """The invoice's money at the end of ``day``."""
        known = self.known(invoice, day)
        if invoice.mirror is not None and len(known) == len(self.facts.get(invoice.key, [])):
            return invoice.mirror
        return derive_over(invoice, known)

    def receivable(self, invoice: ArInvoice, day: date) -> Decimal | None:
        """The open AR on ``day``, or None when the invoice is not receivable then."""
        if invoice.status == NOT_ISSUED or invoice.issued > day:
            return None
        open_ar = self.state_at(invoice, day).open_ar
        return open_ar if open_ar > 0 else None

    def settled_on(self, invoice: ArInvoice) -> date | None:
        """The day of the fact (payment or credit) after which nothing was due on the
        invoice, up to ``as_of``; None while something is due, and for an invoice that
        is not open AR at all (voided, deleted, written off: nothing was settled)."""
        if invoice.status == NOT_ISSUED or not self.state_at(invoice, self.as_of).receivable:
            return None
        known = self.known(invoice, self.as_of)
        settled: date | None = None
        for count, fact in enumerate(known, start=1):
            if derive_over(invoice, known[:count]).balance_due > 0:
                settled = None
            elif settled is None:
                settled = fact.occurred_at.date()
        return settled

    def open_dispute_since(self, invoice: ArInvoice, day: date) -> datetime | None:
        """When the oldest of the invoice's disputes still open on ``day`` was opened
        (which disputes are open is derive's call, asked one dispute at a time)."""
        opened = [
            f.occurred_at
            for f in self.known(invoice, day)
            if f.kind is MoneyFactKind.DISPUTE and derive_over(invoice, [f]).open_disputes
        ]
        return min(opened, default=None)

    def currencies(self) -> list[str]:
        return sorted({invoice.currency for invoice in self.invoices})


def derive_over(invoice: ArInvoice, facts: list[MoneyFact]) -> MoneyState:
    """`derive` for this invoice over ``facts`` (net and tax as stored, else the total
    without tax: they do not move the balance)."""
    tax = money.quantize(0, invoice.currency) if invoice.tax is None else invoice.tax
    return derive(
        currency=invoice.currency,
        document_status=invoice.status,
        net=invoice.total if invoice.net is None else invoice.net,
        tax=tax,
        total=invoice.total,
        facts=facts,
    )
