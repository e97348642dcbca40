"""Read-only queries for reconciliation (sync/engine/reconcile) that join or page the
ledger's tables in ways no single store does.

Each is a short read, paged by key like ``DealStore.deals_in_state``, so no transaction
stays open while the pass calls vendors. Work-item kinds (``"invoice"``,
``"writeback"``) are the engine's vocabulary, so callers pass them in: the ledger's
queue stores kinds, it does not define them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from billsync.sync.ledger.base import Store, to_record
from billsync.sync.ledger.models import DealRecord, InvoiceRecord
from billsync.sync.ledger.schema import deals, invoices, payments, work_items


@dataclass(frozen=True)
class InvoicedDeal:
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


class ReconcileReads(Store):
    """The reads reconciliation makes that the Ledger facade has no method for."""

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
        with self._read() as conn:
            return [to_record(InvoiceRecord, row) for row in conn.execute(query)]

    def unbilled(
        self, invoice_kind: str, *, batch_size: int = 500
    ) -> Iterator[tuple[DealRecord, str | None]]:
        """Deal rows of deals with no invoice in any target, with the status of the
        deal's ``invoice_kind`` work item (None: there is none)."""
        billed = sa.select(deals.c.deal_id).where(deals.c.external_invoice_id.is_not(None))
        work = work_items.alias("work")
        query = (
            sa.select(deals, work.c.status.label("work_status"))
            .outerjoin(work, sa.and_(work.c.kind == invoice_kind, work.c.key == deals.c.deal_id))
            .where(deals.c.external_invoice_id.is_(None), deals.c.deal_id.not_in(billed))
        )
        for row in self._paged(query, (deals.c.deal_id, deals.c.target), batch_size):
            yield to_record(DealRecord, row), row.work_status

    def seen(self, deal_ids: Sequence[str], invoice_kind: str) -> set[str]:
        """Which of these deals the ledger knows: a deal row, or an ``invoice_kind`` work
        item (a deal rejected before it had a target has only the latter)."""
        if not deal_ids:
            return set()
        with self._read() as conn:
            rows = conn.execute(sa.select(deals.c.deal_id).where(deals.c.deal_id.in_(deal_ids)))
            found = {str(r.deal_id) for r in rows}
            items = conn.execute(
                sa.select(work_items.c.key).where(
                    work_items.c.kind == invoice_kind, work_items.c.key.in_(deal_ids)
                )
            )
            found.update(str(r.key) for r in items)
        return found

    def arrived(self, deal_ids: Sequence[str], invoice_kind: str) -> dict[str, str]:
        """Which of these deals billsync has taken in since they were found missing, and
        how: a deal row (it reached the invoice stage), or an ``invoice_kind`` work item
        that failed for good or was closed by an operator (the failure log has it). A
        pending or leased item is still on its way."""
        if not deal_ids:
            return {}
        found: dict[str, str] = {}
        with self._read() as conn:
            rows = conn.execute(sa.select(deals.c.deal_id).where(deals.c.deal_id.in_(deal_ids)))
            for r in rows:
                found[str(r.deal_id)] = "the deal has reached billsync"
            items = conn.execute(
                sa.select(work_items.c.key, work_items.c.status).where(
                    work_items.c.kind == invoice_kind,
                    work_items.c.key.in_(deal_ids),
                    work_items.c.status.in_(("dead", "resolved", "done")),
                )
            )
            for r in items:
                found.setdefault(
                    str(r.key), f"its invoice work is {r.status} (see billsync failures)"
                )
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
        with self._read() as conn:
            return conn.execute(query.limit(1)).first() is not None

    def invoiced(self, writeback_kind: str, *, batch_size: int = 500) -> Iterator[InvoicedDeal]:
        """Every invoiced deal with its invoice and its ``writeback_kind`` work item."""
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
            .outerjoin(work, sa.and_(work.c.kind == writeback_kind, work.c.key == deals.c.deal_id))
        )
        for row in self._paged(query, (deals.c.deal_id, deals.c.target), batch_size):
            yield InvoicedDeal(**row._mapping)

    def _paged(
        self,
        query: sa.Select[Any],
        key: tuple[sa.Column[str], sa.Column[str]],
        batch_size: int,
    ) -> Iterator[sa.Row[Any]]:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        after: tuple[str, str] | None = None
        while True:
            page = query
            if after is not None:
                page = page.where(sa.tuple_(*key) > sa.tuple_(*after))
            with self._read() as conn:
                rows = conn.execute(page.order_by(*key).limit(batch_size)).all()
            yield from rows
            if len(rows) < batch_size:
                return
            last = rows[-1]._mapping
            after = (str(last[key[0].name]), str(last[key[1].name]))
