"""The ledger's tables, declared once. Migration 0001 creates exactly this.

Conventions that hold for every table:
- money is ``Money`` (exact Decimal), time is ``UTCDateTime`` (aware UTC), payloads are
  JSON (JSONB on PostgreSQL) and raw webhook bodies are bytes;
- defaults live in the repository, not the database, so SQLite and PostgreSQL cannot
  disagree about them;
- constraint names come from the naming convention, so later migrations can address
  them by name on both dialects (SQLite batch mode needs names to drop anything).
"""

from __future__ import annotations

import sqlalchemy as sa

from billsync.sync.ledger.models import InboxStatus, WorkStatus
from billsync.sync.ledger.types import Money, UTCDateTime, id_type, json_type

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# Identifier widths: deal-source ids are 18 characters, vendor ids are short, but
# 64/255 leave room for other sources without a migration.
_DEAL_ID = 64
_TARGET = 32
_EXTERNAL_ID = 255
_HOLDER = 200


def _in(column: str, values: type[InboxStatus] | type[WorkStatus]) -> str:
    quoted = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({quoted})"


# One row per named lease (e.g. "run"). Whoever holds an unexpired row owns the cycle.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(_HOLDER), nullable=False),
    sa.Column("acquired_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    # Fencing (migration 0007): rises with every acquisition by a new holder; writes of
    # the invoice stage check it in their own transaction. Holder '' marks a released
    # lease, whose row stays so the count goes on.
    sa.Column("token", sa.BigInteger(), nullable=False),
)

# One row per sync cycle; outcome is NULL while the run is in progress (or crashed).
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("started_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("summary", json_type(), nullable=True),
)

# The exactly-once state machine: one row per deal and target, written (with its
# idempotency key) before any vendor call.
deals = sa.Table(
    "deals",
    metadata,
    sa.Column("deal_id", sa.String(_DEAL_ID), primary_key=True),
    sa.Column("target", sa.String(_TARGET), primary_key=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("revision", sa.String(64), nullable=False),  # the source's change stamp
    sa.Column("idempotency_key", sa.String(255), nullable=False, unique=True),
    sa.Column("intent_at", UTCDateTime(), nullable=False),
    sa.Column("external_invoice_id", sa.String(_EXTERNAL_ID), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The exact reference the invoice is created with (the mapped DocNumber; migration
    # 0007): look-ups search by it. NULL on older rows: looked up by the deal id.
    sa.Column("reference", sa.String(255), nullable=True),
    sa.Index("ix_deals_state_target", "state", "target"),
)

# Invoices as the target reports them. Their money figures are derived from the payments
# table (the target's facts) by billsync.core.money_state.derive, never counted up.
invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("target", sa.String(_TARGET), primary_key=True),
    sa.Column("external_id", sa.String(_EXTERNAL_ID), primary_key=True),
    sa.Column("deal_id", sa.String(_DEAL_ID), nullable=True),  # NULL: created out of band
    sa.Column("number", sa.String(64), nullable=True),
    sa.Column("url", sa.Text(), nullable=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total", Money(), nullable=False),
    sa.Column("amount_paid", Money(), nullable=False),
    sa.Column("balance", Money(), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # What AR aging needs (migration 0004); NULL on rows written before it. Dates are
    # calendar dates as the invoice shows them, not instants.
    sa.Column("issue_date", sa.Date(), nullable=True),
    sa.Column("due_date", sa.Date(), nullable=True),
    # The source account billed (the deal source's account id): one customer across targets;
    # its id in a target is in customer_links.
    sa.Column("account_id", sa.String(_DEAL_ID), nullable=True),
    sa.Column("customer_name", sa.Text(), nullable=True),
    # The money state derived from the target's facts by billsync.core.money_state.derive
    # (migration 0006); NULL on rows not read since. amount_paid and balance above are
    # the same derivation's paid and balance_due.
    sa.Column("intended_total", Money(), nullable=True),  # the draft's pre-tax total
    sa.Column("net", Money(), nullable=True),
    sa.Column("tax", Money(), nullable=True),
    sa.Column("credited", Money(), nullable=True),
    sa.Column("credited_after_payment", Money(), nullable=True),
    sa.Column("refunded", Money(), nullable=True),
    sa.Column("disputed", Money(), nullable=True),
    sa.Column("dispute_lost", Money(), nullable=True),
    sa.Column("written_off", Money(), nullable=True),
    sa.Column("overpaid", Money(), nullable=True),
    sa.Column("unapplied", Money(), nullable=True),  # migration 0010
    sa.Column("open_disputes", sa.Integer(), nullable=True),
    sa.Column("money_status", sa.String(32), nullable=True),
    sa.Column("terms", sa.Text(), nullable=True),
    sa.Column("target_version", sa.String(64), nullable=True),
    sa.Column("money_read_at", UTCDateTime(), nullable=True),
    sa.Index("ix_invoices_deal_id_target", "deal_id", "target"),
)

# The target's money facts per invoice (payments, credits, refunds, disputes), keyed by
# the target's own ids; a fact the target no longer holds is tombstoned (voided_at).
# No foreign key to invoices on purpose: a payment event can
# arrive before the invoice row (out-of-order webhooks) or name an invoice we never
# made, which reconciliation reports.
payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(_TARGET), nullable=False),
    sa.Column("provider_payment_id", sa.String(_EXTERNAL_ID), nullable=False),
    sa.Column("invoice_target", sa.String(_TARGET), nullable=False),
    sa.Column("invoice_external_id", sa.String(_EXTERNAL_ID), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("amount", Money(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("raw", json_type(), nullable=True),
    # Set when the provider voids or deletes the payment (migration 0003). The row stays
    # as a tombstone so a late re-delivery of the original event cannot count it again.
    sa.Column("voided_at", UTCDateTime(), nullable=True),
    # The target's state and version of the fact (migration 0006; NULL = applied).
    sa.Column("state", sa.String(16), nullable=True),
    sa.Column("version", sa.String(64), nullable=True),
    sa.UniqueConstraint("provider", "provider_payment_id"),
    sa.Index("ix_payments_invoice", "invoice_target", "invoice_external_id"),
)

# Verified webhook events, stored raw before they are parsed or acknowledged.
inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(_TARGET), nullable=False),
    sa.Column("event_id", sa.String(_EXTERNAL_ID), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("headers", json_type(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("claimed_by", sa.String(_HOLDER), nullable=True),
    sa.Column("claim_expires_at", UTCDateTime(), nullable=True),
    sa.Column("processed_at", UTCDateTime(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.UniqueConstraint("provider", "event_id"),
    sa.CheckConstraint(_in("status", InboxStatus), name="status"),
    sa.Index("ix_inbox_status_id", "status", "id"),
)

# The retry queue. (kind, key) is unique: enqueueing an existing key resets that row
# instead of adding a second one, so one piece of work has one history.
work_items = sa.Table(
    "work_items",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("payload", json_type(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("leased_by", sa.String(_HOLDER), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("last_error_class", sa.String(32), nullable=True),
    sa.Column("last_error_code", sa.String(64), nullable=True),
    sa.Column("last_error_message", sa.Text(), nullable=True),
    # What the item was built from: an invalid_data failure is re-armed when either
    # the deal revision or the mapping files' hash moves on.
    sa.Column("revision", sa.String(64), nullable=True),
    sa.Column("mapping_hash", sa.String(128), nullable=True),
    # Set when the key was enqueued again while leased: the holder's outcome then
    # sends the row back to pending instead of closing it.
    sa.Column("requeued", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("kind", "key"),
    sa.CheckConstraint(_in("status", WorkStatus), name="status"),
    sa.Index("ix_work_items_status_next_attempt_at", "status", "next_attempt_at"),
)

# Disagreements between the deal source, the ledger and the target. History is kept, so a
# (kind, deal, target) can have many resolved rows but only one open row: open_key
# holds "kind|deal|target" while open and NULL once resolved, and is unique. That is
# a partial unique index that works the same on SQLite and PostgreSQL, including
# for discrepancies with no deal or no target.
discrepancies = sa.Table(
    "discrepancies",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("deal_id", sa.String(_DEAL_ID), nullable=True),
    sa.Column("target", sa.String(_TARGET), nullable=True),
    sa.Column("expected", sa.Text(), nullable=True),
    sa.Column("actual", sa.Text(), nullable=True),
    sa.Column("details", json_type(), nullable=False),
    sa.Column("detected_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime(), nullable=True),
    sa.Column("open_key", sa.String(400), nullable=True, unique=True),
    sa.Index("ix_discrepancies_deal_id", "deal_id"),
)

# Watermarks and feed cursors (the source's change stamp, a target's event id or time).
cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# The connections this ledger has served (migration 0011): each name's connector kind
# and, once its connector names it (a company or account id), the vendor account. Rows
# keyed by a connection's name (invoices, payments, customer links, cursors) belong to
# that account; a configuration that points the name at another account or kind is
# refused at start-up instead of mixing two companies' books.
connections = sa.Table(
    "connections",
    metadata,
    sa.Column("name", sa.String(_TARGET), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("account", sa.String(255), nullable=True),
    sa.Column("first_seen_at", UTCDateTime(), nullable=False),
)

# Which target customer bills a source account: the "ledger link" consulted before any
# look-up in the target (DESIGN.md run cycle step 4). Added by migration 0002.
customer_links = sa.Table(
    "customer_links",
    metadata,
    sa.Column("target", sa.String(_TARGET), primary_key=True),
    sa.Column("account_id", sa.String(_DEAL_ID), primary_key=True),
    sa.Column("external_id", sa.String(_EXTERNAL_ID), nullable=False),
    sa.Column("name", sa.Text(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # How the link was made (migration 0008): created | matched | operator; NULL before.
    sa.Column("method", sa.String(16), nullable=True),
    sa.Column("evidence", json_type(), nullable=True),
)

# Rotating OAuth tokens. version makes saves compare-and-swap, so two refreshers
# cannot overwrite each other's rotated refresh token.
credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("data", json_type(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# Append-only trail of external writes and operator actions.
audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(_HOLDER), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("details", json_type(), nullable=False),
    sa.Index("ix_audit_subject_id", "subject", "id"),
    sa.Index("ix_audit_at", "at"),
    sa.Index("ix_audit_action_id", "action", "id"),  # metrics count failed attempts
)

# Signed-in ops browser sessions (migration 0009). The cookie holds a random session id;
# the ledger keeps only its SHA-256, so a copy of the database signs nobody in. A
# session ends when revoked_at is set (logout, an operator's revoke) or when last_seen_at
# is older than ops.session_idle_minutes.
ops_sessions = sa.Table(
    "ops_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("actor", sa.String(_HOLDER), nullable=False),
    sa.Column("client", sa.String(_HOLDER), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_seen_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_by", sa.String(_HOLDER), nullable=True),
    sa.Index("ix_ops_sessions_last_seen_at", "last_seen_at"),
)
