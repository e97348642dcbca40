"""Index the audit trail by action: every failed attempt is now an audit row
(``work.failed``), and `/metrics` counts them per error class at every scrape.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_action_id", "audit", ["action", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_action_id", table_name="audit")
