"""Customer links say how they were made (issue 16, "Customer identity").

``customer_links.method`` is how the account was tied to the target customer:
``created`` (billsync created the customer), ``matched`` (an existing customer adopted
under the matching rules: unique, unlinked, same name and one more identifier),
``operator`` (`billsync customers link`), or NULL for links written before this
(shown as "unknown"). ``evidence`` records what matched (JSON: the fields that agreed)
or the operator's note.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from billsync.sync.ledger.types import json_type

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_links") as batch:
        batch.add_column(sa.Column("method", sa.String(16), nullable=True))
        batch.add_column(sa.Column("evidence", json_type(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_links") as batch:
        batch.drop_column("evidence")
        batch.drop_column("method")
