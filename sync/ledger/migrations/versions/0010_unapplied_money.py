"""Unapplied money is its own fact kind (issue 15, DESIGN.md "Money model").

QuickBooks keeps a payment's excess over the invoices it pays as ``UnappliedAmt``:
customer credit, never applied to the invoice. Up to 0009 the ledger mirrored it as a
payment of the invoice, so after a credit memo on that invoice was voided the ledger's
balance due was lower than QuickBooks' ``Balance`` by the unapplied amount. Facts of
that shape (id ``<payment>:invoice:<invoice>:unapplied``) become kind ``unapplied``,
and invoices gain the derived ``unapplied`` figure.

An invoice's derived figures are recomputed at its next read from the target (any
change to it, or ``billsync reconcile --fix``, which reports the paid amount as a
mismatch until then).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from billsync.sync.ledger import types as lt

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAYMENTS = sa.table(
    "payments",
    sa.column("kind", sa.String),
    sa.column("provider_payment_id", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("unapplied", lt.Money(), nullable=True))
    op.execute(
        _PAYMENTS.update()
        .where(_PAYMENTS.c.kind == "payment", _PAYMENTS.c.provider_payment_id.like("%:unapplied"))
        .values(kind="unapplied")
    )


def downgrade() -> None:
    op.execute(_PAYMENTS.update().where(_PAYMENTS.c.kind == "unapplied").values(kind="payment"))
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("unapplied")
