"""Read-only queries behind the AR reports (`billsync report aging|kpis`).

They return plain rows; the arithmetic lives in ``sync/ops`` (aging, KPIs), in Python
over Decimals, because SQLite cannot add exact decimals (money is TEXT there) and the
reports must give the same figures on both backends. Each read is one short query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from sync.ledger.base import Store
from sync.ledger.schema import deals, discrepancies, invoices, payments


@dataclass(frozen=True)
class ArInvoice:
    """An invoice as the reports see it. ``issued`` is the issue date, or for rows
    written before the ledger kept one, the UTC date the row was created."""

    target: str
    external_id: str
    deal_id: str | None
    number: str | None
    currency: str
    total: Decimal
    status: str
    issued: date
    due_date: date | None
    account_id: str | None
    customer_name: str | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.target, self.external_id)


@dataclass(frozen=True)
class Settlement:
    """One money movement against an invoice (voided payments are left out)."""

    target: str
    external_id: str
    kind: str
    amount: Decimal
    occurred_at: datetime

    @property
    def key(self) -> tuple[str, str]:
        return (self.target, self.external_id)


@dataclass(frozen=True)
class OpenDispute:
    """A deal whose latest payment fact is a dispute still open."""

    deal_id: str
    target: str
    external_id: str | None
    since: datetime
    """When the dispute opened: its chargeback's time, else when the deal moved."""


class ArReads(Store):
    def ar_invoices(self, issued_by: date, *, currency: str | None = None) -> list[ArInvoice]:
        """Invoices issued on or before ``issued_by``, any status."""
        ic = invoices.c
        next_day = datetime.combine(issued_by + timedelta(days=1), time(0), tzinfo=UTC)
        query = sa.select(
            ic.target, ic.external_id, ic.deal_id, ic.number, ic.currency, ic.total, ic.status,
            ic.issue_date, ic.due_date, ic.account_id, ic.customer_name, ic.created_at,
        ).where(
            sa.or_(
                ic.issue_date <= issued_by,
                sa.and_(ic.issue_date.is_(None), ic.created_at < next_day),
            )
        )  # fmt: skip
        if currency is not None:
            query = query.where(ic.currency == currency)
        with self._read() as conn:
            rows = conn.execute(query.order_by(ic.target, ic.external_id)).all()
        return [
            ArInvoice(
                r.target, r.external_id, r.deal_id, r.number, r.currency, r.total, r.status,
                r.issue_date or r.created_at.date(), r.due_date, r.account_id, r.customer_name,
            )
            for r in rows
        ]  # fmt: skip

    def settlements(self, before: datetime, *, currency: str | None = None) -> list[Settlement]:
        """Non-voided payment rows that happened before ``before``, oldest first."""
        pc = payments.c
        query = sa.select(
            pc.invoice_target, pc.invoice_external_id, pc.kind, pc.amount, pc.occurred_at
        ).where(pc.voided_at.is_(None), pc.occurred_at < before)
        if currency is not None:
            query = query.where(pc.currency == currency)
        with self._read() as conn:
            rows = conn.execute(query.order_by(pc.occurred_at, pc.id)).all()
        return [
            Settlement(r.invoice_target, r.invoice_external_id, r.kind, r.amount, r.occurred_at)
            for r in rows
        ]

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

    def open_disputes(self, state: str = "disputed") -> list[OpenDispute]:
        """Deals in the ``disputed`` state, with when their latest chargeback happened."""
        dc, pc = deals.c, payments.c
        latest = (
            sa.select(
                pc.invoice_target,
                pc.invoice_external_id,
                sa.func.max(pc.occurred_at).label("since"),
            )
            .where(pc.kind == "chargeback", pc.voided_at.is_(None))
            .group_by(pc.invoice_target, pc.invoice_external_id)
            .subquery()
        )
        query = (
            sa.select(dc.deal_id, dc.target, dc.external_invoice_id, dc.updated_at, latest.c.since)
            .outerjoin(
                latest,
                sa.and_(
                    latest.c.invoice_target == dc.target,
                    latest.c.invoice_external_id == dc.external_invoice_id,
                ),
            )
            .where(dc.state == state)
            .order_by(dc.deal_id, dc.target)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            OpenDispute(r.deal_id, r.target, r.external_invoice_id, _aware(r.since, r.updated_at))
            for r in rows
        ]


def _aware(since: datetime | None, fallback: datetime) -> datetime:
    # max() keeps its argument's type, so UTCDateTime has already made it aware UTC.
    return fallback if since is None else since.astimezone(UTC)
