"""Initial ledger schema.

Written out by hand (not generated) so it reads as the contract; a test checks that
it matches ``billsync.sync.ledger.schema.metadata`` exactly on SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from billsync.sync.ledger import types as lt

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INBOX_STATUS = "status IN ('pending', 'processing', 'done', 'failed')"
_WORK_STATUS = "status IN ('pending', 'leased', 'done', 'dead', 'resolved')"


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", lt.UTCDateTime(), nullable=False),
        sa.Column("expires_at", lt.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("started_at", lt.UTCDateTime(), nullable=False),
        sa.Column("finished_at", lt.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("summary", lt.json_type(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_started_at"), "runs", ["started_at"])

    op.create_table(
        "deals",
        sa.Column("deal_id", sa.String(64), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("intent_at", lt.UTCDateTime(), nullable=False),
        sa.Column("external_invoice_id", sa.String(255), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", lt.UTCDateTime(), nullable=False),
        sa.Column("updated_at", lt.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("deal_id", "target", name=op.f("pk_deals")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_deals_idempotency_key")),
    )
    op.create_index(op.f("ix_deals_state_target"), "deals", ["state", "target"])

    op.create_table(
        "invoices",
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("deal_id", sa.String(64), nullable=True),
        sa.Column("number", sa.String(64), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total", lt.Money(), nullable=False),
        sa.Column("amount_paid", lt.Money(), nullable=False),
        sa.Column("balance", lt.Money(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", lt.UTCDateTime(), nullable=False),
        sa.Column("updated_at", lt.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("target", "external_id", name=op.f("pk_invoices")),
    )
    op.create_index(op.f("ix_invoices_deal_id_target"), "invoices", ["deal_id", "target"])

    op.create_table(
        "payments",
        sa.Column("id", lt.id_type(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("provider_payment_id", sa.String(255), nullable=False),
        sa.Column("invoice_target", sa.String(32), nullable=False),
        sa.Column("invoice_external_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("amount", lt.Money(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("occurred_at", lt.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", lt.UTCDateTime(), nullable=False),
        sa.Column("raw", lt.json_type(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint(
            "provider",
            "provider_payment_id",
            name=op.f("uq_payments_provider_provider_payment_id"),
        ),
    )
    op.create_index(
        op.f("ix_payments_invoice"), "payments", ["invoice_target", "invoice_external_id"]
    )

    op.create_table(
        "inbox",
        sa.Column("id", lt.id_type(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("received_at", lt.UTCDateTime(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", lt.json_type(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claim_expires_at", lt.UTCDateTime(), nullable=True),
        sa.Column("processed_at", lt.UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("provider", "event_id", name=op.f("uq_inbox_provider_event_id")),
        sa.CheckConstraint(_INBOX_STATUS, name=op.f("ck_inbox_status")),
    )
    op.create_index(op.f("ix_inbox_status_id"), "inbox", ["status", "id"])

    op.create_table(
        "work_items",
        sa.Column("id", lt.id_type(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payload", lt.json_type(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", lt.UTCDateTime(), nullable=False),
        sa.Column("leased_by", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", lt.UTCDateTime(), nullable=True),
        sa.Column("last_error_class", sa.String(32), nullable=True),
        sa.Column("last_error_code", sa.String(64), nullable=True),
        sa.Column("last_error_message", sa.Text(), nullable=True),
        sa.Column("revision", sa.String(64), nullable=True),
        sa.Column("mapping_hash", sa.String(128), nullable=True),
        sa.Column("requeued", sa.Boolean(), nullable=False),
        sa.Column("created_at", lt.UTCDateTime(), nullable=False),
        sa.Column("updated_at", lt.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_items")),
        sa.UniqueConstraint("kind", "key", name=op.f("uq_work_items_kind_key")),
        sa.CheckConstraint(_WORK_STATUS, name=op.f("ck_work_items_status")),
    )
    op.create_index(
        op.f("ix_work_items_status_next_attempt_at"), "work_items", ["status", "next_attempt_at"]
    )

    op.create_table(
        "discrepancies",
        sa.Column("id", lt.id_type(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("deal_id", sa.String(64), nullable=True),
        sa.Column("target", sa.String(32), nullable=True),
        sa.Column("expected", sa.Text(), nullable=True),
        sa.Column("actual", sa.Text(), nullable=True),
        sa.Column("details", lt.json_type(), nullable=False),
        sa.Column("detected_at", lt.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", lt.UTCDateTime(), nullable=True),
        sa.Column("open_key", sa.String(400), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discrepancies")),
        sa.UniqueConstraint("open_key", name=op.f("uq_discrepancies_open_key")),
    )
    op.create_index(op.f("ix_discrepancies_deal_id"), "discrepancies", ["deal_id"])

    op.create_table(
        "cursors",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", lt.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cursors")),
    )
    op.create_table(
        "credentials",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("data", lt.json_type(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", lt.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_credentials")),
    )
    op.create_table(
        "audit",
        sa.Column("id", lt.id_type(), autoincrement=True, nullable=False),
        sa.Column("at", lt.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("details", lt.json_type(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    op.create_index(op.f("ix_audit_subject_id"), "audit", ["subject", "id"])
    op.create_index(op.f("ix_audit_at"), "audit", ["at"])


def downgrade() -> None:
    for table in (
        "audit",
        "credentials",
        "cursors",
        "discrepancies",
        "work_items",
        "inbox",
        "payments",
        "invoices",
        "deals",
        "runs",
        "leases",
    ):
        op.drop_table(table)
