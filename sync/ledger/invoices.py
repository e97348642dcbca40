"""Invoices and the payments against them.

An invoice's amount_paid and balance are always recomputed from the distinct payment
rows, in the transaction that changes either side: events arrive twice and out of
order, and a sum of facts survives both where a running counter does not. Sums are
done in Python over Decimal rows because SQLite cannot add exact decimals.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync.ledger.base import Store, dialect_insert, insert_for, to_record
from sync.ledger.models import PAYMENT_SIGN, InvoiceRecord, PaymentKind, PaymentRecord
from sync.ledger.schema import deals, invoices, payments
from sync.ledger.types import check_money, exact_sum

# Columns an update leaves as stored when the caller passes None.
_KEPT_WHEN_NONE = (
    "deal_id",
    "number",
    "url",
    "issue_date",
    "due_date",
    "account_id",
    "customer_name",
)


# Statements the engine runs for every invoice, built once with bind parameters (see
# base.dialect_insert for why).
_LIVE_PAYMENTS = sa.select(payments.c.kind, payments.c.amount).where(
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
    fresh = {
        name: stmt.excluded[name]
        for name in ("currency", "total", "amount_paid", "balance", "status", "updated_at")
    }
    return stmt.on_conflict_do_update(
        index_elements=[invoices.c.target, invoices.c.external_id], set_={**keep, **fresh}
    ).returning(*invoices.c)


def _settlement(conn: Connection, target: str, external_id: str) -> tuple[Decimal, Decimal]:
    """(paid, credited) for one invoice from its payment rows."""
    rows = conn.execute(_LIVE_PAYMENTS, {"b_target": target, "b_external_id": external_id}).all()
    # copy_negate, not unary minus: minus rounds to the context's 28 digits.
    cash = [(row.amount, PAYMENT_SIGN[PaymentKind(row.kind)]) for row in rows]
    paid = exact_sum([a if sign > 0 else a.copy_negate() for a, sign in cash if sign != 0])
    credited = exact_sum([row.amount for row in rows if row.kind == PaymentKind.CREDIT])
    return paid, credited


def _balance(total: Decimal, paid: Decimal, credited: Decimal) -> Decimal:
    return exact_sum([total, paid.copy_negate(), credited.copy_negate()])


def _refresh_totals(conn: Connection, target: str, external_id: str, now: datetime) -> None:
    row = conn.execute(
        sa.select(invoices.c.total).where(
            invoices.c.target == target, invoices.c.external_id == external_id
        )
    ).first()
    if row is None:
        return  # the payment came first; upsert_invoice will pick it up
    paid, credited = _settlement(conn, target, external_id)
    conn.execute(
        sa.update(invoices)
        .where(invoices.c.target == target, invoices.c.external_id == external_id)
        .values(amount_paid=paid, balance=_balance(row.total, paid, credited), updated_at=now)
    )


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
    ) -> InvoiceRecord:
        """Insert or update an invoice as the target reports it.

        None for deal_id, number, url, the dates or the customer keeps the stored value
        (a status-only update from a webhook must not erase the link to the deal or the
        due date aging needs). amount_paid and balance are derived from the payments
        table, never taken from the caller.
        """
        total = check_money(total)
        now = self._now()
        with self._write() as conn:
            paid, credited = _settlement(conn, target, external_id)
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
                    "amount_paid": paid,
                    "balance": _balance(total, paid, credited),
                    "status": status,
                    "created_at": now,
                    "updated_at": now,
                    "issue_date": issue_date,
                    "due_date": due_date,
                    "account_id": account_id,
                    "customer_name": customer_name,
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
    def record_payment(
        self,
        *,
        provider: str,
        provider_payment_id: str,
        invoice_target: str,
        invoice_external_id: str,
        kind: PaymentKind | str,
        amount: Decimal,
        currency: str,
        occurred_at: datetime,
        raw: dict[str, Any] | None = None,
    ) -> bool:
        """Store one money movement; False if that provider payment id is known.

        ``amount`` is the positive magnitude; ``kind`` gives the direction (see
        PaymentKind). The same payment reported by a webhook and by polling is one
        row, so it counts once; the invoice's totals are refreshed in the same
        transaction.
        """
        kind = PaymentKind(kind)
        amount = check_money(amount)
        if amount < 0:
            raise ValueError("store payment amounts as positive magnitudes; the kind is the sign")
        now = self._now()
        with self._write() as conn:
            stmt = insert_for(conn, payments).values(
                provider=provider,
                provider_payment_id=provider_payment_id,
                invoice_target=invoice_target,
                invoice_external_id=invoice_external_id,
                kind=kind.value,
                amount=amount,
                currency=currency,
                occurred_at=occurred_at,
                recorded_at=now,
                raw=raw,
            )
            inserted = conn.execute(
                stmt.on_conflict_do_nothing(
                    index_elements=[payments.c.provider, payments.c.provider_payment_id]
                ).returning(payments.c.id)
            ).first()
            if inserted is None:
                return False
            _refresh_totals(conn, invoice_target, invoice_external_id, now)
            return True

    def void_payments(self, provider: str, provider_payment_id: str) -> list[PaymentRecord]:
        """Void the payment row with this id and every row keyed ``<id>:…`` (one
        provider payment can settle several invoices). The rows stay as tombstones, so
        a late re-delivery of the original event is still a duplicate; the invoices'
        totals are refreshed in the same transaction. Returns the rows voided now."""
        now = self._now()
        match = sa.or_(
            payments.c.provider_payment_id == provider_payment_id,
            payments.c.provider_payment_id.startswith(f"{provider_payment_id}:", autoescape=True),
        )
        with self._write() as conn:
            rows = conn.execute(
                sa.update(payments)
                .where(payments.c.provider == provider, match, payments.c.voided_at.is_(None))
                .values(voided_at=now)
                .returning(*payments.c)
            ).all()
            for key in {(row.invoice_target, row.invoice_external_id) for row in rows}:
                _refresh_totals(conn, key[0], key[1], now)
        return [to_record(PaymentRecord, row) for row in rows]

    def known_payment(self, provider: str, provider_payment_id: str) -> bool:
        """Whether any row is keyed by this id (or ``<id>:…``), voided or not."""
        match = sa.or_(
            payments.c.provider_payment_id == provider_payment_id,
            payments.c.provider_payment_id.startswith(f"{provider_payment_id}:", autoescape=True),
        )
        with self._read() as conn:
            found = conn.execute(
                sa.select(payments.c.id).where(payments.c.provider == provider, match).limit(1)
            ).first()
        return found is not None

    def amount_paid(self, target: str, external_invoice_id: str) -> Decimal:
        """Cash received net of refunds and chargebacks (credits are not cash)."""
        with self._read() as conn:
            paid, _credited = _settlement(conn, target, external_invoice_id)
        return paid

    def payments_for_invoice(self, target: str, external_invoice_id: str) -> list[PaymentRecord]:
        """Oldest first (by when it happened), e.g. for the last payment date."""
        key = {"b_target": target, "b_external_id": external_invoice_id}
        with self._read() as conn:
            rows = conn.execute(_PAYMENTS_OF, key).all()
        return [to_record(PaymentRecord, row) for row in rows]
