"""Server-side ops sessions (issue 17, "Ops login").

``ops_sessions`` holds one row per browser session of the ops pages: the SHA-256 of
the random session id in the cookie (never the id itself), the actor the audit trail
names, the client address, when it was created and last seen, and when and by whom it
was revoked (logout or `billsync ops sessions revoke`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from billsync.sync.ledger import types as lt

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ops_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("client", sa.String(200), nullable=True),
        sa.Column("created_at", lt.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", lt.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", lt.UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_ops_sessions")),
    )
    op.create_index("ix_ops_sessions_last_seen_at", "ops_sessions", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_ops_sessions_last_seen_at", table_name="ops_sessions")
    op.drop_table("ops_sessions")
