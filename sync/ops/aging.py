"""Accounts-receivable aging (`billsync report aging`).

Definition: the open AR of every invoice issued by the as-of date (see `ar_book`: the
invoice's balance due as the target shows it — total minus payments and credits —
when its money status counts as open AR, i.e. it is not voided, deleted or written
off; a refund or a dispute does not reopen it; as of an earlier date, from the facts
that had happened by the end of it), put in a bucket by days past the target's due
date on that date:

    current   not yet due, or due that very day (days past due ≤ 0)
    1-30      1 to 30 days past due
    31-60     31 to 60
    61-90     61 to 90
    90+       more than 90

Per currency, never summed across currencies; ``total`` is the sum of the buckets.
``connections`` gives the same per connection (the company or account that issued the
invoice: ``books_us``, ``payments_eu``; a single-company ledger's connections are named
after their kinds), each connection's totals per currency; the per-currency totals
are the sums over connections. ``connection`` filters the whole report to one.
``--by customer`` adds one row per (currency, customer), the customer being the source
account billed (one customer billed in two targets is one row). Invoices
without a recorded due date are aged from their issue date (due on receipt) and
counted in ``without_due_date``, so the figure is conservative rather than flattering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from billsync.sync.ledger import Ledger
from billsync.sync.ledger.ar_reads import ArInvoice
from billsync.sync.ledger.types import exact_sum
from billsync.sync.ops.ar_book import Book, due_date
from billsync.sync.ops.render import csv_text, money_str

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
UNKNOWN_CUSTOMER = "(customer not recorded)"


def bucket(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


@dataclass
class AgingRow:
    currency: str
    customer: str | None = None
    account_id: str | None = None
    amounts: dict[str, list[Decimal]] = field(default_factory=lambda: {b: [] for b in BUCKETS})

    def add(self, name: str, amount: Decimal) -> None:
        self.amounts[name].append(amount)

    def bucket_total(self, name: str) -> Decimal:
        return exact_sum(self.amounts[name])

    @property
    def total(self) -> Decimal:
        return exact_sum([self.bucket_total(name) for name in BUCKETS])

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        if self.customer is not None:
            shown.update(customer=self.customer, account_id=self.account_id)
            shown["currency"] = self.currency
        for name in BUCKETS:
            shown[name] = money_str(self.bucket_total(name), self.currency)
        shown["total"] = money_str(self.total, self.currency)
        return shown


@dataclass
class AgingReport:
    as_of: date
    currencies: dict[str, AgingRow]
    customers: list[AgingRow] | None
    without_due_date: int
    connections: dict[str, dict[str, AgingRow]] = field(default_factory=dict)
    """Connection → currency → its totals."""

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "as_of": self.as_of.isoformat(),
            "currencies": {c: row.as_json() for c, row in sorted(self.currencies.items())},
            "connections": {
                name: {c: row.as_json() for c, row in sorted(rows.items())}
                for name, rows in sorted(self.connections.items())
            },
        }
        if self.customers is not None:
            document["customers"] = [row.as_json() for row in self.customers]
        document["without_due_date"] = self.without_due_date
        return document

    def by_connection(self, currency: str) -> list[tuple[str, AgingRow]]:
        """Each connection's totals in ``currency``, by name."""
        return [
            (name, rows[currency])
            for name, rows in sorted(self.connections.items())
            if currency in rows
        ]

    def csv(self) -> str:
        """One row per customer (with ``--by customer``), then per connection
        ("(connection qbo_us)" in the customer column, so the columns stay those of a
        single-company report), then the currency's total ("(all customers)")."""
        header = ["currency", "customer", *BUCKETS, "total"]
        rows: list[list[object]] = []
        for currency, row in sorted(self.currencies.items()):
            for customer in self.customers or []:
                if customer.currency == currency:
                    rows.append(_csv_row(customer, customer.customer))
            for name, subtotal in self.by_connection(currency):
                rows.append(_csv_row(subtotal, connection_cell(name)))
            rows.append(_csv_row(row, "(all customers)"))
        return csv_text(header, rows)


def connection_cell(name: str) -> str:
    """How a connection's subtotal row is named in the customer column."""
    return f"(connection {name})"


def _csv_row(row: AgingRow, customer: str | None) -> list[object]:
    amounts = [money_str(row.bucket_total(name), row.currency) for name in BUCKETS]
    return [row.currency, customer, *amounts, money_str(row.total, row.currency)]


def _customer_key(invoice: ArInvoice) -> tuple[str, str]:
    # The source account: one customer even when it is billed in several targets.
    return (invoice.currency, invoice.account_id or invoice.customer_name or "")


def age_book(book: Book, *, by_customer: bool = False) -> AgingReport:
    """The aging of an already loaded book (pure: no ledger access)."""
    as_of = book.as_of
    currencies = {currency: AgingRow(currency) for currency in book.currencies()}
    connections: dict[str, dict[str, AgingRow]] = {}
    customers: dict[tuple[str, str], AgingRow] = {}
    undated = 0
    for invoice in book.invoices:
        balance = book.receivable(invoice, as_of)
        if balance is None:
            continue
        if invoice.due_date is None:
            undated += 1
        name = bucket((as_of - due_date(invoice)).days)
        currencies[invoice.currency].add(name, balance)
        mine = connections.setdefault(invoice.target, {})
        mine.setdefault(invoice.currency, AgingRow(invoice.currency)).add(name, balance)
        if by_customer:
            key = _customer_key(invoice)
            row = customers.get(key)
            if row is None:
                shown = invoice.customer_name or invoice.account_id or UNKNOWN_CUSTOMER
                row = customers[key] = AgingRow(invoice.currency, shown, invoice.account_id)
            row.add(name, balance)
    ordered = None
    if by_customer:
        ordered = sorted(customers.values(), key=lambda r: (r.currency, -r.total, r.customer or ""))
    return AgingReport(as_of, currencies, ordered, undated, connections)


def aging(
    ledger: Ledger,
    as_of: date,
    *,
    currency: str | None = None,
    connection: str | None = None,
    by_customer: bool = False,
) -> AgingReport:
    book = Book.load(ledger, as_of, currency, connection=connection)
    return age_book(book, by_customer=by_customer)
