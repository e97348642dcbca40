"""Customer links: which target customer bills each source account.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from billsync.sync.ledger import types as lt

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_links",
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("updated_at", lt.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("target", "account_id", name=op.f("pk_customer_links")),
    )


def downgrade() -> None:
    op.drop_table("customer_links")
