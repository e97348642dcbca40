"""What the ledger hands back: small frozen records and the status vocabularies.

Reads return these instead of SQLAlchemy rows so callers cannot hold a cursor open,
mutate a result by accident, or depend on column order. Field names match the column
names, which keeps the row-to-record step a plain ``Record(**row)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple


class DealState(StrEnum):
    """Where one deal stands for one target. Stored as text, so later issues can add
    states without a migration; these are the ones the ledger itself relies on."""

    INVOICING = "invoicing"  # intent committed; the vendor call may or may not have happened
    INVOICED = "invoiced"  # the target confirmed the invoice
    NEEDS_ATTENTION = "needs_attention"  # invalid data or mapping; an operator or a change fixes it
    FAILED = "failed"  # the create failed and is in the retry queue
    # The intent was closed without an invoice: looked up by its reference and confirmed
    # absent, because the deal now goes to another target (audited: intent.abandoned).
    ABANDONED = "abandoned"
    # An operator moved the deal to another target after its invoice here was voided
    # (`billsync deals reroute`, audited): this target's record is history.
    REROUTED = "rerouted"


class InboxStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class WorkStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    LEASED = "leased"  # a worker holds it until lease_expires_at
    DONE = "done"
    DEAD = "dead"  # out of attempts (or permanently invalid); waits for an operator
    RESOLVED = "resolved"  # an operator closed it without success


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
    token: int = 0


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    summary: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class DealRecord:
    deal_id: str
    target: str
    state: str
    revision: str
    idempotency_key: str
    intent_at: datetime
    external_invoice_id: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    reference: str | None = None  # what the invoice was created with (the DocNumber)


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    target: str
    external_id: str
    deal_id: str | None
    number: str | None
    url: str | None
    currency: str
    total: Decimal
    amount_paid: Decimal
    balance: Decimal
    status: str  # the document's status in the target (InvoiceStatus)
    created_at: datetime
    updated_at: datetime
    due_date: date | None = None
    issue_date: date | None = None
    # Derived by billsync.core.money_state.derive from the target's facts (None: not read since
    # migration 0006).
    money_status: str | None = None
    net: Decimal | None = None
    tax: Decimal | None = None
    credited: Decimal | None = None
    refunded: Decimal | None = None
    disputed: Decimal | None = None
    dispute_lost: Decimal | None = None
    written_off: Decimal | None = None
    open_disputes: int | None = None
    terms: str | None = None
    money_read_at: datetime | None = None
    intended_total: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    id: int
    provider: str
    provider_payment_id: str
    invoice_target: str
    invoice_external_id: str
    kind: str
    amount: Decimal
    currency: str
    occurred_at: datetime
    recorded_at: datetime
    raw: dict[str, Any] | None
    voided_at: datetime | None = None
    state: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class InboxEvent:
    id: int
    provider: str
    event_id: str
    received_at: datetime
    body: bytes
    headers: dict[str, str]
    status: str
    attempts: int
    claimed_by: str | None
    claim_expires_at: datetime | None
    processed_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class WorkItem:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    leased_by: str | None
    lease_expires_at: datetime | None
    last_error_class: str | None
    last_error_code: str | None
    last_error_message: str | None
    revision: str | None
    mapping_hash: str | None
    requeued: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Discrepancy:
    id: int
    kind: str
    deal_id: str | None
    target: str | None
    expected: str | None
    actual: str | None
    details: dict[str, Any]
    detected_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class CustomerLink:
    target: str
    account_id: str
    external_id: str
    name: str | None
    updated_at: datetime
    method: str | None = None  # created | matched | operator; None: before migration 0008
    evidence: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


class StoredCredentials(NamedTuple):
    """Credentials plus the version to pass back to ``save_credentials``."""

    data: dict[str, Any]
    version: int
