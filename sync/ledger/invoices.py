"""Invoices and the money facts against them.

An invoice's money figures are derived by `billsync.core.money_state.derive` from the live fact
rows (the target's facts, mirrored by `invoice_money.InvoiceMoneyStore`), in the
transaction that changes either side, never counted up from events.
"""

from __future__ import annotations

import functools
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from billsync.core.money_state import derive
from billsync.sync.ledger.base import Store, dialect_insert, to_record
from billsync.sync.ledger.invoice_money import stored_facts
from billsync.sync.ledger.models import InvoiceRecord, PaymentRecord
from billsync.sync.ledger.schema import deals, invoices, payments
from billsync.sync.ledger.types import check_money

# Columns an update leaves as stored when the caller passes None.
_KEPT_WHEN_NONE = (
    "deal_id",
    "number",
    "url",
    "issue_date",
    "due_date",
    "account_id",
    "customer_name",
    "intended_total",
    "tax",
    "net",
)


_DERIVED = ("amount_paid", "balance", "credited", "refunded", "disputed", "dispute_lost",
            "written_off", "overpaid", "unapplied", "open_disputes", "money_status")  # fmt: skip

# Statements the engine runs for every invoice, built once with bind parameters (see
# base.dialect_insert for why).
_LIVE_FACTS = sa.select(payments).where(
    payments.c.invoice_target == sa.bindparam("b_target"),
    payments.c.invoice_external_id == sa.bindparam("b_external_id"),
    payments.c.voided_at.is_(None),
)
_PAYMENTS_OF = (
    sa.select(payments)
    .where(
        payments.c.invoice_target == sa.bindparam("b_target"),
        payments.c.invoice_external_id == sa.bindparam("b_external_id"),
    )
    .order_by(payments.c.occurred_at, payments.c.id)
)
_LINKED_INVOICE = (
    sa.select(invoices)
    .join(
        deals,
        sa.and_(
            deals.c.target == invoices.c.target,
            deals.c.external_invoice_id == invoices.c.external_id,
        ),
    )
    .where(deals.c.deal_id == sa.bindparam("b_deal_id"), deals.c.target == sa.bindparam("b_target"))
)
_NEWEST_INVOICE_NAMING = (
    sa.select(invoices)
    .where(
        invoices.c.deal_id == sa.bindparam("b_deal_id"),
        invoices.c.target == sa.bindparam("b_target"),
    )
    .order_by(invoices.c.created_at.desc(), invoices.c.external_id.desc())
    .limit(1)
)


@functools.cache
def _upsert_statement(dialect: str) -> sa.Insert:
    stmt = dialect_insert(dialect, invoices)
    keep = {
        name: sa.func.coalesce(stmt.excluded[name], invoices.c[name]) for name in _KEPT_WHEN_NONE
    }
    fresh = {name: stmt.excluded[name] for name in ("currency", "total", "status", "updated_at")}
    # The money figures are re-derived from the stored facts (the target's, as last
    # read) with the status and total given: the same derive() as a read.
    derived = {name: stmt.excluded[name] for name in _DERIVED}
    return stmt.on_conflict_do_update(
        index_elements=[invoices.c.target, invoices.c.external_id],
        set_={**keep, **fresh, **derived},
    ).returning(*invoices.c)


def _derived(
    conn: Connection, target: str, external_id: str, currency: str, status: str, total: Decimal
) -> dict[str, Any]:
    """The money columns of an invoice from its live facts (no read of the target: the
    totals are the caller's, e.g. the invoice just created)."""
    rows = conn.execute(_LIVE_FACTS, {"b_target": target, "b_external_id": external_id}).all()
    facts = stored_facts(to_record(PaymentRecord, row) for row in rows)
    state = derive(
        currency=currency, document_status=status, net=total, tax=total * 0, total=total,
        facts=facts,
    )  # fmt: skip
    return {
        "amount_paid": state.paid,
        "balance": state.balance_due,
        "credited": state.credited,
        "refunded": state.refunded,
        "disputed": state.disputed,
        "dispute_lost": state.dispute_lost,
        "written_off": state.written_off,
        "overpaid": state.overpaid,
        "unapplied": state.unapplied,
        "open_disputes": state.open_disputes,
        "money_status": state.status.value,
    }


class InvoiceStore(Store):
    def upsert_invoice(
        self,
        *,
        target: str,
        external_id: str,
        currency: str,
        total: Decimal,
        status: str,
        deal_id: str | None = None,
        number: str | None = None,
        url: str | None = None,
        issue_date: date | None = None,
        due_date: date | None = None,
        account_id: str | None = None,
        customer_name: str | None = None,
        intended_total: Decimal | None = None,
        tax: Decimal | None = None,
    ) -> InvoiceRecord:
        """Insert or update an invoice as the target reports it.

        None for deal_id, number, url, the dates or the customer keeps the stored value
        (a status-only update from a webhook must not erase the link to the deal or the
        due date aging needs). The money figures are derived from the stored facts (the
        target's, as last read) by billsync.core.money_state.derive, never taken from the caller.
        ``intended_total`` is the draft's pre-tax total, kept from creation so
        reconciliation can tell an edit in the target from the invoice as made; ``tax``
        is the target's tax as it answered the create (net = total - tax).
        """
        total = check_money(total)
        now = self._now()
        with self._write() as conn:
            derived = _derived(conn, target, external_id, currency, status, total)
            row = conn.execute(
                _upsert_statement(conn.dialect.name),
                {
                    "target": target,
                    "external_id": external_id,
                    "deal_id": deal_id,
                    "number": number,
                    "url": url,
                    "currency": currency,
                    "total": total,
                    **derived,
                    "status": status,
                    "created_at": now,
                    "updated_at": now,
                    "issue_date": issue_date,
                    "due_date": due_date,
                    "account_id": account_id,
                    "customer_name": customer_name,
                    "intended_total": intended_total,
                    "tax": tax,
                    "net": None if tax is None else total - tax,
                },
            ).one()
            return to_record(InvoiceRecord, row)

    def get_invoice(self, target: str, external_id: str) -> InvoiceRecord | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(invoices).where(
                    invoices.c.target == target, invoices.c.external_id == external_id
                )
            ).first()
        return None if row is None else to_record(InvoiceRecord, row)

    def invoice_for_deal(self, deal_id: str, target: str) -> InvoiceRecord | None:
        """The deal's invoice: the one its deal row links to, else the newest one
        naming the deal (e.g. found by lookup after a crash, before linking)."""
        key = {"b_deal_id": deal_id, "b_target": target}
        with self._read() as conn:
            row = conn.execute(_LINKED_INVOICE, key).first()
            if row is None:
                row = conn.execute(_NEWEST_INVOICE_NAMING, key).first()
        return None if row is None else to_record(InvoiceRecord, row)

    def invoices_for_deal(self, deal_id: str, target: str) -> list[InvoiceRecord]:
        """Every invoice naming the deal; more than one is a duplicate to report."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(invoices)
                .where(invoices.c.deal_id == deal_id, invoices.c.target == target)
                .order_by(invoices.c.created_at, invoices.c.external_id)
            ).all()
        return [to_record(InvoiceRecord, row) for row in rows]


class PaymentStore(Store):
    def payments_for_invoice(self, target: str, external_invoice_id: str) -> list[PaymentRecord]:
        """Every fact row of the invoice, tombstones included, oldest first (by when it
        happened)."""
        key = {"b_target": target, "b_external_id": external_invoice_id}
        with self._read() as conn:
            rows = conn.execute(_PAYMENTS_OF, key).all()
        return [to_record(PaymentRecord, row) for row in rows]
