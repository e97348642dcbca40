"""Invoices remember when they were issued, when they fall due and whom they bill.

AR aging and the KPIs (`billsync report`) age open balances by days past due and
group them by customer; the invoices table had none of that. All four columns are
nullable: rows written before this migration keep NULL, and the reports fall back to
the row's creation date (documented in sync/ops/aging.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("issue_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("due_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("account_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("customer_name", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("customer_name")
        batch.drop_column("account_id")
        batch.drop_column("due_date")
        batch.drop_column("issue_date")
