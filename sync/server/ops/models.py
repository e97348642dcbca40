"""The JSON API's documents as pydantic models, for the OpenAPI document.

Each mirrors an ops result's ``as_json()`` (the CLI's ``--json`` output) field for
field: the routes hand the ``as_json()`` document to FastAPI, which checks it against
these models, so the document and the API cannot drift apart unnoticed. Money is a
decimal string at the currency's precision, never a JSON number.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Moment = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Day = Annotated[str, Field(json_schema_extra={"format": "date"})]
Money = Annotated[str, Field(description="decimal string at the currency's precision")]


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


# --- failures ---------------------------------------------------------------------------


class Failure(_Out):
    id: int
    kind: str
    deal_id: str | None
    deal_name: str | None
    target: str | None = Field(description="the item's connection (its former name)")
    connection: str | None = Field(
        description="the connection (target or payment provider) the item is for"
    )
    system: str = Field(description="where it failed: billsync, the source or a connection")
    stage: str
    error_class: str | None
    code: str | None
    message: str
    status: str = Field(description="pending, leased, dead or resolved")
    attempts: int
    first_seen: Moment
    last_attempt_at: Moment | None
    next_attempt_at: Moment | None


class Advice(_Out):
    sentence: str = Field(description="what is wrong, the fix, and what billsync does next")
    fix: str
    vendor_message: str | None
    retries_by_itself: bool


class AuditEntry(_Out):
    at: Moment
    actor: str
    action: str
    details: dict[str, Any]


class FailureDetail(Failure):
    advice: Advice
    attempted: dict[str, Any]
    deal: dict[str, Any] | None
    attempt_history: list[dict[str, Any]]
    audit: list[AuditEntry]


class ActionOutcome(_Out):
    id: int
    done: bool
    status_before: str
    status_after: str
    reason: str | None


class ActionReport(_Out):
    action: Literal["retry", "resolve"]
    actor: str
    items: list[ActionOutcome]


NOTE_PATTERN = r"[^\x09-\x0d\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
"""A note says something: at least one character that is not white space, spelled out
as Python's ``str.isspace`` set because ``\\s`` means something else in each regex
engine that reads the pattern (ECMA in clients, Rust in pydantic, Python here)."""


MAX_ID = 2**53 - 1
"""The largest id the API takes: exact as a JSON number in every client (an IEEE
double), and far beyond any ledger's ids."""
ItemId = Annotated[int, Field(ge=1, le=MAX_ID)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetryIds(_Request):
    """Retry these failures."""

    ids: list[ItemId] = Field(min_length=1, max_length=1000)
    note: str | None = Field(default=None, max_length=2000)


class RetryAll(_Request):
    """Retry every open failure, optionally only those of one class and/or connection
    (``target``: its former name)."""

    all: Literal[True]
    error_class: str | None = Field(default=None, alias="class", max_length=64)
    connection: str | None = Field(default=None, max_length=64)
    target: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=2000)


class RetryNote(_Request):
    note: str | None = Field(default=None, max_length=2000)


class ResolveRequest(_Request):
    note: str = Field(max_length=2000, pattern=NOTE_PATTERN, description="why it is resolved")


# --- discrepancies ------------------------------------------------------------------------


class Discrepancy(_Out):
    kind: str
    deal_id: str | None
    target: str | None
    external_id: str | None
    expected: str | None
    actual: str | None
    detail: str
    detected_at: Moment
    resolved_at: Moment | None
    id: int | None
    acknowledged_at: Moment | None
    acknowledged_by: str | None
    acknowledged_note: str | None


class DiscrepancyNote(_Request):
    note: str = Field(max_length=2000, pattern=NOTE_PATTERN, description="why")


# --- status -------------------------------------------------------------------------------


class StatusRun(_Out):
    id: str
    started_at: Moment
    finished_at: Moment | None
    outcome: str | None
    duration_s: float | None  # seconds, not money
    counts: dict[str, Any]
    stopped: dict[str, Any]
    age_s: int | None


class RunLease(_Out):
    holder: str
    since: Moment


class Queue(_Out):
    by_status: dict[str, int]
    by_kind: dict[str, dict[str, int]]
    open_failures_by_class: dict[str, int]


class Cursor(_Out):
    name: str
    value: str
    updated_at: Moment
    age_s: int | None


class Inbox(_Out):
    lag_s: int
    by_status: dict[str, int]


class DiscrepancyCounts(_Out):
    open: int
    by_kind: dict[str, int]


class SharedCustomer(_Out):
    target: str
    customer_id: str
    accounts: list[str]


class Customers(_Out):
    shared: list[SharedCustomer] = Field(
        description="target customers linked to two or more accounts (each a warning)"
    )


class StatusConnection(_Out):
    name: str
    kind: str = Field(description="the connector kind (its entry-point name)")
    label: str
    enabled: bool
    role: Literal["source", "target", "unused"]
    credential_health: str = Field(
        description="ok, warning, none stored, or not reported (the connector keeps none)"
    )
    open_failures: int
    cursors: list[str]
    stopped_in_last_run: str | None = Field(
        description="why the last finished run stopped calling it, if it did"
    )


class Status(_Out):
    as_of: Moment
    runs: list[StatusRun]
    run_lease: RunLease | None
    queue: Queue
    cursors: list[Cursor]
    inbox: Inbox
    discrepancies: DiscrepancyCounts
    connections: list[StatusConnection] = Field(
        description="each connection in use: the deal source, the targets, other enabled ones"
    )
    credentials: dict[str, list[dict[str, Any]]] = Field(
        description="per connection that reports credential health, one entry per stored "
        "credential: expiry times, a summary line and warnings, never a secret"
    )
    source_quota: dict[str, Any] = Field(
        description="the deal source's API allocation as a run last recorded it "
        "(system, label, known; used, max, remaining when known)"
    )
    customers: Customers
    warnings: list[str]


# --- reports ------------------------------------------------------------------------------


class AgingBuckets(_Out):
    current: Money
    days_1_30: Money = Field(alias="1-30")
    days_31_60: Money = Field(alias="31-60")
    days_61_90: Money = Field(alias="61-90")
    days_over_90: Money = Field(alias="90+")
    total: Money


class AgingCustomer(AgingBuckets):
    customer: str | None
    account_id: str | None
    currency: str


class Aging(_Out):
    as_of: Day
    currencies: dict[str, AgingBuckets]
    connections: dict[str, dict[str, AgingBuckets]] = Field(
        description="per connection, its totals per currency"
    )
    customers: list[AgingCustomer] | None = Field(default=None, description="only with by=customer")
    without_due_date: int


class WriteOffs(_Out):
    count: int
    amount: Money


class CurrencyKpis(_Out):
    ar: Money
    beginning_ar: Money
    ending_current_ar: Money
    credit_sales: Money
    dso_days: str | None
    cei_percent: str | None
    write_offs: WriteOffs
    disputed: Money


class Window(_Out):
    start: Day = Field(alias="from")
    to: Day


class BillingAccuracy(_Out):
    issued: int
    without_discrepancy: int
    rate_percent: str | None


class DaysToPay(_Out):
    invoices: int
    days: str | None


class OpenDisputes(_Out):
    count: int
    oldest_age_days: int | None
    oldest_deal_id: str | None


class Kpis(_Out):
    as_of: Day
    window_days: int
    window: Window
    currencies: dict[str, CurrencyKpis]
    billing_accuracy: BillingAccuracy
    average_days_to_pay: DaysToPay
    open_disputes: OpenDisputes
