"""The ledger's mirror of each invoice's money in its target.

`record_invoice_money` takes one fresh read of an invoice from its target
(`billsync.core.canonical.InvoiceMoney`) and, in one transaction, makes the ledger agree with
it: every fact is upserted by the target's id (a fact that changed there — a payment
edited, a credit note voided, a refund failed — updates its row; never a second row),
facts of this invoice the target no longer holds are tombstoned (``voided_at``), and
the invoice's figures are re-derived by `billsync.core.money_state.derive` from the target's
facts. Nothing here adds up events: the same read recorded twice changes nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from billsync.core.canonical import FactState, InvoiceMoney, MoneyFact, MoneyFactKind
from billsync.core.money_state import MoneyState, derive
from billsync.sync.ledger.base import Store, dialect_insert, to_record
from billsync.sync.ledger.models import InvoiceRecord, PaymentRecord
from billsync.sync.ledger.schema import invoices, payments

__all__ = ["InvoiceMoneyStore", "MoneyChange", "stored_facts"]


@dataclass(frozen=True, slots=True)
class MoneyChange:
    """What recording one read changed."""

    before: InvoiceRecord | None
    after: InvoiceRecord
    state: MoneyState
    facts_changed: bool

    @property
    def changed(self) -> bool:
        """Whether anything the deal shows (figures, status, due date) moved."""
        if self.facts_changed or self.before is None:
            return True
        return any(_shown(self.before, k) != _shown(self.after, k) for k in _SHOWN)


# What the deal shows of an invoice (its write-back); None (never read) reads as 0.
_SHOWN = ("money_status", "amount_paid", "balance", "total", "status", "due_date",
          "credited", "refunded", "tax")  # fmt: skip


def _shown(record: InvoiceRecord, name: str) -> Any:
    value = getattr(record, name)
    return 0 if value is None and name in ("credited", "refunded", "tax") else value


@functools.cache
def _fact_upsert(dialect: str) -> sa.Insert:
    stmt = dialect_insert(dialect, payments)
    columns = ("invoice_target", "invoice_external_id", "kind", "amount", "currency",
               "occurred_at", "state", "version", "raw")  # fmt: skip
    values: dict[str, Any] = {name: stmt.excluded[name] for name in columns}
    values["voided_at"] = sa.null()
    return stmt.on_conflict_do_update(
        index_elements=[payments.c.provider, payments.c.provider_payment_id], set_=values
    )


def _fact_row(row: Any) -> tuple[str, str, Decimal, str, str | None]:
    return (row.kind, row.invoice_external_id, row.amount, row.state or "applied", row.version)


class InvoiceMoneyStore(Store):
    def record_invoice_money(self, money: InvoiceMoney) -> MoneyChange:
        """Make the ledger's copy of this invoice's money equal the target's read."""
        now = self._now()
        state = derive(
            currency=money.currency,
            document_status=money.status,
            net=money.net,
            tax=money.tax,
            total=money.total,
            facts=money.facts,
        )
        key = (invoices.c.target == money.target) & (invoices.c.external_id == money.external_id)
        with self._write() as conn:
            found = conn.execute(sa.select(invoices).where(key)).first()
            before = None if found is None else to_record(InvoiceRecord, found)
            facts_changed = self._mirror_facts(conn, money, now)
            values = _invoice_values(money, state, now)
            if found is None:
                # An upsert: a concurrent writer (another worker on PostgreSQL) may have
                # inserted the row since the select; its read is as good as ours.
                stmt = dialect_insert(conn.dialect.name, invoices).values(
                    target=money.target,
                    external_id=money.external_id,
                    deal_id=money.deal_id,
                    created_at=now,
                    **values,
                )
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[invoices.c.target, invoices.c.external_id], set_=values
                    )
                )
            else:
                conn.execute(sa.update(invoices).where(key).values(**values))
            after = to_record(InvoiceRecord, conn.execute(sa.select(invoices).where(key)).one())
        return MoneyChange(before, after, state, facts_changed)

    def _mirror_facts(self, conn: Connection, money: InvoiceMoney, now: datetime) -> bool:
        of_invoice = (payments.c.invoice_target == money.target) & (
            payments.c.invoice_external_id == money.external_id
        )
        ids = [f.fact_id for f in money.facts]
        mine = sa.select(payments).where(payments.c.provider == money.target)
        rows = conn.execute(
            mine.where(sa.or_(of_invoice, payments.c.provider_payment_id.in_(ids)))
        ).all()
        stored = {row.provider_payment_id: row for row in rows}
        changed = False
        for fact in money.facts:
            row = stored.get(fact.fact_id)
            wanted = (
                fact.kind.value,
                money.external_id,
                fact.amount,
                fact.state.value,
                fact.version,
            )
            if row is not None and row.voided_at is None and _fact_row(row) == wanted:
                continue
            changed = True
            conn.execute(
                _fact_upsert(conn.dialect.name),
                {
                    "provider": money.target,
                    "provider_payment_id": fact.fact_id,
                    "invoice_target": money.target,
                    "invoice_external_id": money.external_id,
                    "kind": fact.kind.value,
                    "amount": fact.amount,
                    "currency": money.currency,
                    "occurred_at": fact.occurred_at,
                    "recorded_at": now,
                    "state": fact.state.value,
                    "version": fact.version,
                    "raw": None,
                },
            )
        gone = [
            row.id
            for row in rows
            if row.invoice_external_id == money.external_id
            and row.voided_at is None
            and row.provider_payment_id not in set(ids)
        ]
        if gone:
            changed = True
            conn.execute(sa.update(payments).where(payments.c.id.in_(gone)).values(voided_at=now))
        return changed

    def invoices_with_fact(self, target: str, fact_prefix: str) -> list[str]:
        """Ids of the invoices holding (or having held) a fact keyed ``fact_prefix`` or
        ``fact_prefix:…`` — where a payment that moved or vanished used to apply."""
        match = sa.or_(
            payments.c.provider_payment_id == fact_prefix,
            payments.c.provider_payment_id.startswith(f"{fact_prefix}:", autoescape=True),
        )
        with self._read() as conn:
            rows = conn.execute(
                sa.select(payments.c.invoice_external_id)
                .where(payments.c.provider == target, match)
                .distinct()
            ).all()
        return sorted(row.invoice_external_id for row in rows)

    def invoice_facts(self, target: str, external_id: str) -> list[MoneyFact]:
        """The live (not tombstoned) facts of one invoice, as the target last showed them."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(payments)
                .where(
                    payments.c.invoice_target == target,
                    payments.c.invoice_external_id == external_id,
                    payments.c.voided_at.is_(None),
                )
                .order_by(payments.c.occurred_at, payments.c.id)
            ).all()
        return stored_facts(to_record(PaymentRecord, row) for row in rows)


def stored_facts(rows: Any) -> list[MoneyFact]:
    """Ledger rows as facts; rows of kinds written before migration 0006 are skipped
    (they are replaced at the invoice's next read)."""
    facts = []
    for row in rows:
        try:
            kind = MoneyFactKind(row.kind)
        except ValueError:
            continue
        facts.append(
            MoneyFact(
                fact_id=row.provider_payment_id,
                kind=kind,
                state=FactState(row.state or FactState.APPLIED),
                amount=row.amount,
                occurred_at=row.occurred_at,
                version=row.version,
            )
        )
    return facts


def _invoice_values(money: InvoiceMoney, state: MoneyState, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        "currency": money.currency,
        "status": money.status.value,
        "total": state.total,
        "net": state.net,
        "tax": state.tax,
        "amount_paid": state.paid,
        "balance": state.balance_due,
        "credited": state.credited,
        "credited_after_payment": state.credited_after_payment,
        "refunded": state.refunded,
        "disputed": state.disputed,
        "dispute_lost": state.dispute_lost,
        "written_off": state.written_off,
        "overpaid": state.overpaid,
        "unapplied": state.unapplied,
        "open_disputes": state.open_disputes,
        "money_status": state.status.value,
        "target_version": money.version,
        "money_read_at": now,
        "updated_at": now,
    }
    # Kept as stored when the read does not carry them (a deleted invoice is an id).
    optional = {
        "due_date": money.due_date,
        "issue_date": money.issue_date,
        "terms": money.terms,
        "number": money.number,
    }
    values.update({k: v for k, v in optional.items() if v is not None})
    return values
