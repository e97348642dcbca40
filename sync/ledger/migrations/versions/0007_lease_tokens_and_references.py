"""Fencing tokens and stored references (issue 16, DESIGN.md "Exactly once").

``leases.token`` rises on every acquisition by a new holder; intents and the invoice
stage's outcomes are written only while the writer's token is the current one, so a
run frozen past its lease cannot write after another run took over. A released lease
keeps its row (holder ``''``) so the next acquisition still counts up from it.

``deals.reference`` is the exact reference the invoice is created with (the mapped
DocNumber): crash recovery, the duplicate check and reconciliation search by it. Rows
written before this keep NULL, and are looked up as before (by the deal id).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.add_column(
            sa.Column("token", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("reference", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("reference")
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("token")
