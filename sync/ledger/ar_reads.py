"""Read-only queries behind the AR reports (`billsync report aging|kpis`).

They return the ledger's mirror of each invoice's money as stored: the figures
`billsync.core.money_state.derive` wrote on the invoice row, and the target's live facts (a
tombstoned fact is left out). The reports decide in Python which of the two a date
needs (``sync/ops/ar_book.py``); nothing here adds up money, and SQLite could not add
exact decimals anyway (money is TEXT there). Each read is one short query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from billsync.core import money
from billsync.core.canonical import MoneyFact
from billsync.core.money_state import MoneyState, MoneyStatus
from billsync.sync.ledger.base import Store
from billsync.sync.ledger.invoice_money import stored_facts
from billsync.sync.ledger.schema import discrepancies, invoices, payments


@dataclass(frozen=True)
class ArInvoice:
    """An invoice as the reports see it. ``issued`` is the issue date, or for rows
    written before the ledger kept one, the UTC date the row was created. ``mirror`` is
    the money state the ledger derived at the invoice's last read; None on a row never
    derived (money_status NULL, or a status this release does not know)."""

    target: str
    external_id: str
    deal_id: str | None
    number: str | None
    currency: str
    total: Decimal
    net: Decimal | None
    tax: Decimal | None
    status: str
    issued: date
    due_date: date | None
    account_id: str | None
    customer_name: str | None
    mirror: MoneyState | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.target, self.external_id)


class ArReads(Store):
    def ar_invoices(
        self, issued_by: date, *, currency: str | None = None, target: str | None = None
    ) -> list[ArInvoice]:
        """Invoices issued on or before ``issued_by``, any status; ``target``: only
        those of this connection."""
        ic = invoices.c
        next_day = datetime.combine(issued_by + timedelta(days=1), time(0), tzinfo=UTC)
        query = sa.select(invoices).where(
            sa.or_(
                ic.issue_date <= issued_by,
                sa.and_(ic.issue_date.is_(None), ic.created_at < next_day),
            )
        )
        if currency is not None:
            query = query.where(ic.currency == currency)
        if target is not None:
            query = query.where(ic.target == target)
        with self._read() as conn:
            rows = conn.execute(query.order_by(ic.target, ic.external_id)).all()
        return [
            ArInvoice(
                r.target, r.external_id, r.deal_id, r.number, r.currency, r.total, r.net, r.tax,
                r.status, r.issue_date or r.created_at.date(), r.due_date, r.account_id,
                r.customer_name, _mirror(r),
            )
            for r in rows
        ]  # fmt: skip

    def ar_facts(
        self, *, currency: str | None = None, target: str | None = None
    ) -> dict[tuple[str, str], list[MoneyFact]]:
        """The live facts of every invoice (of connection ``target``), per (target,
        external id), oldest first."""
        pc = payments.c
        query = sa.select(payments).where(pc.voided_at.is_(None))
        if currency is not None:
            query = query.where(pc.currency == currency)
        if target is not None:
            query = query.where(pc.invoice_target == target)
        with self._read() as conn:
            rows = conn.execute(query.order_by(pc.occurred_at, pc.id)).all()
        by_invoice: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for row in rows:
            by_invoice[(row.invoice_target, row.invoice_external_id)].append(row)
        return {key: stored_facts(found) for key, found in by_invoice.items()}

    def deals_with_discrepancy(self, kinds: Iterable[str]) -> set[tuple[str, str]]:
        """(deal_id, target) pairs that ever had a discrepancy of one of ``kinds``,
        open or resolved (a resolved billing error was still an error)."""
        dc = discrepancies.c
        query = (
            sa.select(dc.deal_id, dc.target)
            .where(dc.kind.in_(list(kinds)), dc.deal_id.is_not(None), dc.target.is_not(None))
            .distinct()
        )
        with self._read() as conn:
            return {(str(r.deal_id), str(r.target)) for r in conn.execute(query)}


def _mirror(row: Any) -> MoneyState | None:
    """The derived columns as a MoneyState. Figures a writer left NULL (upsert_invoice
    writes no net, tax or post-payment credit) read as the totals without tax and 0."""
    try:
        status = MoneyStatus(row.money_status)
    except ValueError:
        return None
    zero = money.quantize(0, row.currency)

    def given(value: Decimal | None) -> Decimal:
        return zero if value is None else value

    return MoneyState(
        currency=row.currency,
        net=row.total if row.net is None else row.net,
        tax=given(row.tax),
        total=row.total,
        paid=row.amount_paid,
        credited=given(row.credited),
        credited_after_payment=given(row.credited_after_payment),
        refunded=given(row.refunded),
        disputed=given(row.disputed),
        dispute_lost=given(row.dispute_lost),
        written_off=given(row.written_off),
        balance_due=row.balance,
        unapplied=given(row.unapplied),
        overpaid=given(row.overpaid),
        open_disputes=row.open_disputes or 0,
        status=status,
    )
