"""Invoices mirror the target's money (issue 15, DESIGN.md "Money model").

The invoices table gains the figures `billsync.core.money_state.derive` computes from the
target's facts (net, tax, credited, refunded, disputed, written off, overpaid, the
money status) plus the target's terms and version and when its money was last read, and the draft's
pre-tax total as created (``intended_total``), so an edit in the target stays visible
after the mirror follows it.
The payments table becomes the mirror of the target's money facts: ``state`` is the
target's state of the fact (a refund failed, a credit note voided, a dispute lost) and
``version`` its version; ``voided_at`` marks a fact the target no longer holds
(tombstone).

Rows written before this keep NULL in the new columns; they are read as "applied" facts
and the invoice's figures are filled at its next read from the target (any change, or
``billsync reconcile --fix``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from billsync.sync.ledger import types as lt

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MONEY_COLUMNS = (
    "intended_total",
    "net",
    "tax",
    "credited",
    "credited_after_payment",
    "refunded",
    "disputed",
    "dispute_lost",
    "written_off",
    "overpaid",
)


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        for name in _MONEY_COLUMNS:
            batch.add_column(sa.Column(name, lt.Money(), nullable=True))
        batch.add_column(sa.Column("open_disputes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("money_status", sa.String(32), nullable=True))
        batch.add_column(sa.Column("terms", sa.Text(), nullable=True))
        batch.add_column(sa.Column("target_version", sa.String(64), nullable=True))
        batch.add_column(sa.Column("money_read_at", lt.UTCDateTime(), nullable=True))
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=True))
        batch.add_column(sa.Column("version", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("version")
        batch.drop_column("state")
    with op.batch_alter_table("invoices") as batch:
        for name in ("money_read_at", "target_version", "terms", "money_status", "open_disputes"):
            batch.drop_column(name)
        for name in reversed(_MONEY_COLUMNS):
            batch.drop_column(name)
