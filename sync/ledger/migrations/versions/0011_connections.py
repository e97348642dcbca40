"""Connections: the ledger remembers what each connection name is (issue 18).

A deployment may now hold several accounts of one connector kind (two QuickBooks
companies, a Stripe account per region), each a named connection whose name keys its
rows. The new ``connections`` table records each name's connector kind and, once known,
its vendor account, so a configuration that re-points a name at another company is
refused instead of mixing two companies' books (`billsync.sync.ledger.connections`).

Up to 0010 every target and provider name in the ledger was a connector's own name
(``quickbooks``, ``stripe``), so each one found in the ledger becomes a connection of
that kind; its account is learned at the next start from the configuration.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from billsync.sync.ledger import types as lt

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Where a connection's name was stored before this revision.
_NAMED = (("deals", "target"), ("invoices", "target"), ("payments", "provider"),
          ("customer_links", "target"), ("inbox", "provider"))  # fmt: skip


def upgrade() -> None:
    table = op.create_table(
        "connections",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("account", sa.String(255), nullable=True),
        sa.Column("first_seen_at", lt.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_connections")),
    )
    bind = op.get_bind()
    names: set[str] = set()
    for table_name, column in _NAMED:
        query: sa.Select[tuple[object]] = (
            sa.select(sa.column(column)).select_from(sa.table(table_name)).distinct()
        )
        names |= {str(row[0]) for row in bind.execute(query) if row[0]}
    now = datetime.now(UTC)
    if names:
        op.bulk_insert(
            table,
            [{"name": n, "kind": n, "account": None, "first_seen_at": now} for n in sorted(names)],
        )


def downgrade() -> None:
    op.drop_table("connections")
