"""The failure log: list, show, retry and resolve failed work items.

A failure is a row of the retry queue (`work_items`) whose last attempt failed; which
rows count, and the ``open | dead | resolved | all`` views, are defined in
`billsync.sync.ledger.ops_reads`. Retry and resolve go through `QueueAdmin`, which writes the
audit row (who, what, the note, the status before) in the same transaction as the
change.

Each failure names its *connection* (``qbo_uk``): the target or payment provider its
work item is for, as the ledger stores it; the log filters by it. ``system`` is where
it failed: billsync itself, the deal source (write-backs) or that connection.

Times: ``first_seen`` is when the item was first queued (its row's creation);
``last_attempt_at`` is the latest failed attempt recorded in the audit trail
(``work.failed`` rows), else the row's last update when that was the failure itself,
else None (an operator acted since and the time of the failure is not kept).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billsync.sync.ledger import Ledger, WorkItem, WorkStatus, work_subject
from billsync.sync.ledger.models import AuditEntry
from billsync.sync.ledger.ops_reads import FailureView
from billsync.sync.ledger.queue import WORK_FAILED
from billsync.sync.ops.advice import VALIDATION, Advice, FailureFacts, advise
from billsync.sync.ops.connections import Connections, installed
from billsync.sync.ops.render import iso

ATTEMPT_ACTION = WORK_FAILED
"""The audit action of one failed attempt (the time, class, code and message); the
audit section of `failures show` lists the other actions (retry, resolve)."""
OPERATOR_ACTIONS = ("work.retry", "work.resolve")


class UnknownFailure(LookupError):
    """An id that names no failure: a usage error (exit 2), not a failed action."""

    def __init__(self, item_id: int) -> None:
        super().__init__(f"no failure with id {item_id}; see billsync failures list")
        self.item_id = item_id


def default_actor() -> str:
    """Who the audit trail names for a CLI action: ``cli:<login>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (containers)
        user = "unknown"
    return f"cli:{user or 'unknown'}"


# --- one line of the log --------------------------------------------------------------


def _source(source: str | None, connections: Connections | None) -> str:
    """The deal source's connection: as given, else the configured or installed one."""
    if source:
        return source
    return (connections or installed()).source or "source"


def connection_of(item: WorkItem) -> str | None:
    """The connection a work item is for: its target (invoices, write-backs) or its
    payment provider (payment feeds)."""
    found = item.payload.get("target") or item.payload.get("provider")
    return str(found) if found else None


def failing_system(item: WorkItem, source: str) -> str:
    """Which system the failure came from: billsync itself for a rejected deal, the
    source for write-backs, else the item's connection (its target or provider)."""
    if item.last_error_code == VALIDATION:
        return "billsync"
    if item.kind == "writeback":
        return source
    return connection_of(item) or "unknown"


@dataclass(frozen=True)
class FailureRow:
    id: int
    kind: str
    deal_id: str | None
    deal_name: str | None
    target: str | None
    """The item's connection (kept under this name for scripts that read it)."""
    system: str
    stage: str
    error_class: str | None
    code: str | None
    message: str
    status: str
    attempts: int
    first_seen: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "deal_id": self.deal_id,
            "deal_name": self.deal_name,
            "target": self.target,
            "connection": self.target,
            "system": self.system,
            "stage": self.stage,
            "error_class": self.error_class,
            "code": self.code,
            "message": self.message,
            "status": self.status,
            "attempts": self.attempts,
            "first_seen": iso(self.first_seen),
            "last_attempt_at": iso(self.last_attempt_at),
            "next_attempt_at": iso(self.next_attempt_at),
        }


def _last_attempt(item: WorkItem, history: Sequence[AuditEntry]) -> datetime | None:
    failed = [entry.at for entry in history if entry.action == ATTEMPT_ACTION]
    if failed:
        return max(failed)
    operator = [entry.at for entry in history if entry.action in OPERATOR_ACTIONS]
    if operator and max(operator) >= item.updated_at:
        return None
    return item.updated_at if item.last_error_class is not None else None


def failure_row(item: WorkItem, history: Sequence[AuditEntry], source: str) -> FailureRow:
    payload = item.payload
    deal_id = payload.get("deal_id")
    waiting = item.status in (WorkStatus.PENDING, WorkStatus.LEASED)
    return FailureRow(
        id=item.id,
        kind=item.kind,
        deal_id=str(deal_id) if deal_id else None,
        deal_name=str(payload["deal_name"]) if payload.get("deal_name") else None,
        target=connection_of(item),
        system=failing_system(item, source),
        stage=str(payload.get("stage") or item.kind),
        error_class=item.last_error_class,
        code=item.last_error_code,
        message=item.last_error_message or "",
        status=item.status,
        attempts=item.attempts,
        first_seen=item.created_at,
        last_attempt_at=_last_attempt(item, history),
        next_attempt_at=item.next_attempt_at if waiting else None,
    )


@dataclass(frozen=True)
class FailureQuery:
    view: FailureView = FailureView.OPEN
    connection: str | None = None
    error_class: str | None = None
    since: datetime | None = None
    limit: int = 1000


def list_failures(
    ledger: Ledger,
    query: FailureQuery,
    source: str | None = None,
    connections: Connections | None = None,
) -> list[FailureRow]:
    """Failures matching ``query``, most recent activity first. ``source``: the deal
    source's connection (default: the configured or installed one)."""
    source = _source(source, connections)
    items = ledger.failures(
        query.view,
        target=query.connection,
        error_class=query.error_class,
        since=query.since,
        limit=query.limit,
    )
    history = ledger.audit_for_subjects([work_subject(item.id) for item in items])
    return [failure_row(item, history[work_subject(item.id)], source) for item in items]


# --- everything about one -------------------------------------------------------------


@dataclass(frozen=True)
class FailureDetail:
    row: FailureRow
    advice: Advice
    attempted: dict[str, Any]
    """What billsync tried to do, from the item's payload (no secrets are ever in it)."""
    deal: dict[str, Any] | None
    """The deal as the ledger knows it: per-target state and invoice."""
    attempts: list[dict[str, Any]]
    """Each failed attempt with its error; only the last one when the trail has none."""
    audit: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            **self.row.as_json(),
            "advice": self.advice.as_json(),
            "attempted": self.attempted,
            "deal": self.deal,
            "attempt_history": self.attempts,
            "audit": self.audit,
        }


def _attempted(item: WorkItem) -> dict[str, Any]:
    payload = item.payload
    stage = str(payload.get("stage") or item.kind)
    found: dict[str, Any] = {"stage": stage, "kind": item.kind, "key": item.key}
    draft = payload.get("draft")
    if isinstance(draft, Mapping):
        customer = draft.get("customer") if isinstance(draft.get("customer"), Mapping) else {}
        assert isinstance(customer, Mapping)
        lines = draft.get("lines") if isinstance(draft.get("lines"), list) else []
        assert isinstance(lines, list)
        found["invoice"] = {
            "target": draft.get("target"),
            "customer": customer.get("name"),
            "currency": draft.get("currency"),
            "total": draft.get("total"),  # already a decimal string in the payload
            "lines": len(lines),
            "items": sorted({str(line.get("item_ref")) for line in lines if line}),
            "doc_number": draft.get("doc_number"),
            "terms": draft.get("terms"),
            "issue_date": draft.get("issue_date"),
            "idempotency_key": draft.get("idempotency_key"),
        }
    if isinstance(payload.get("problems"), list):
        found["problems"] = payload["problems"]
    if payload.get("error"):
        found["error_shown_on_deal"] = payload["error"]
    for name in ("cursor", "last_event"):
        if payload.get(name):
            found[name] = payload[name]
    return found


def _deal(ledger: Ledger, deal_id: str | None) -> dict[str, Any] | None:
    if not deal_id:
        return None
    targets = []
    for record in ledger.deal_rows(deal_id):
        target = record.target
        invoice = ledger.invoice_for_deal(deal_id, target)
        targets.append(
            {
                "target": target,
                "state": record.state,
                "last_error": record.last_error,
                "invoice": None
                if invoice is None
                else {
                    "id": invoice.external_id,
                    "number": invoice.number,
                    "status": invoice.status,
                    "currency": invoice.currency,
                    "total": format(invoice.total, "f"),
                    "balance": format(invoice.balance, "f"),
                },
                "updated_at": iso(record.updated_at),
            }
        )
    discrepancies = [
        {"kind": d.kind, "target": d.target, "open": d.resolved_at is None}
        for d in ledger.discrepancies_for_deal(deal_id)
    ]
    return {"deal_id": deal_id, "targets": targets, "discrepancies": discrepancies}


def _audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": iso(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "details": entry.details,
    }


def _attempt_history(row: FailureRow, history: Sequence[AuditEntry]) -> list[dict[str, Any]]:
    failed = [entry for entry in history if entry.action == ATTEMPT_ACTION]
    if failed:
        return [
            {
                "at": iso(entry.at),
                "attempt": entry.details.get("attempts"),
                "error_class": entry.details.get("error_class"),
                "code": entry.details.get("code"),
                "message": entry.details.get("message"),
            }
            for entry in failed
        ]
    # The queue keeps only the last error of an item.
    return [
        {
            "at": iso(row.last_attempt_at),
            "attempt": row.attempts or None,
            "error_class": row.error_class,
            "code": row.code,
            "message": row.message,
            "only_last_kept": True,
        }
    ]


def show_failure(
    ledger: Ledger,
    item_id: int,
    source: str | None = None,
    connections: Connections | None = None,
) -> FailureDetail:
    """Everything about one failure; UnknownFailure if the id names none. Its advice
    reads the error table of the connection's connector (``connections``; default:
    each installed connector the connection named after its kind)."""
    source = _source(source, connections)
    item = ledger.get_work(item_id)
    if item is None or not ledger.is_failure(item):
        raise UnknownFailure(item_id)
    history = ledger.audit_for(work_subject(item.id))
    row = failure_row(item, history, source)
    facts = FailureFacts(
        item_id=row.id,
        kind=row.kind,
        system=row.system,
        stage=row.stage,
        error_class=row.error_class,
        code=row.code,
        message=row.message,
        status=row.status,
        attempts=row.attempts,
        deal_id=row.deal_id,
        deal_name=row.deal_name,
        payload=item.payload,
        next_attempt_at=row.next_attempt_at,
        source=source,
    )
    return FailureDetail(
        row=row,
        advice=advise(facts, connections=connections),
        attempted=_attempted(item),
        deal=_deal(ledger, row.deal_id),
        attempts=_attempt_history(row, history),
        audit=[_audit_json(entry) for entry in history if entry.action != ATTEMPT_ACTION],
    )


# --- acting on them -------------------------------------------------------------------


@dataclass(frozen=True)
class ActionOutcome:
    id: int
    done: bool
    status_before: str
    status_after: str
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "done": self.done,
            "status_before": self.status_before,
            "status_after": self.status_after,
            "reason": self.reason,
        }


def _known(ledger: Ledger, ids: Iterable[int]) -> list[WorkItem]:
    """The items, in the order given; UnknownFailure for the first id that names none
    (checked before anything changes, so a typo does nothing at all)."""
    items = []
    for item_id in dict.fromkeys(ids):
        item = ledger.get_work(item_id)
        if item is None or not ledger.is_failure(item):
            raise UnknownFailure(item_id)
        items.append(item)
    return items


def _why_not(item: WorkItem, action: str) -> str:
    if item.status == WorkStatus.LEASED:
        return "a run is working on it right now; try again when the run has finished"
    if item.status == WorkStatus.RESOLVED and action == "resolve":
        return "it is already resolved"
    if item.status == WorkStatus.DONE:
        return "it has succeeded meanwhile"
    return f"it is {item.status}"


def _act(ledger: Ledger, items: Sequence[WorkItem], action: str, do: Any) -> list[ActionOutcome]:
    outcomes = []
    for item in items:
        done = bool(do(item.id))
        after = ledger.get_work(item.id)
        fresh = after or item
        outcomes.append(
            ActionOutcome(
                id=item.id,
                done=done,
                status_before=item.status,
                status_after=fresh.status,
                reason=None if done else _why_not(fresh, action),
            )
        )
    return outcomes


def retry_failures(
    ledger: Ledger, ids: Sequence[int], actor: str, note: str | None = None
) -> list[ActionOutcome]:
    """Queue these failures for the next run, attempts reset; audited per item."""
    items = _known(ledger, ids)
    return _act(ledger, items, "retry", lambda i: ledger.retry_work(i, actor, note=note))


def retry_all(
    ledger: Ledger,
    actor: str,
    *,
    error_class: str | None = None,
    connection: str | None = None,
    note: str | None = None,
) -> list[ActionOutcome]:
    """Retry every open failure (optionally of one class or connection)."""
    items = ledger.failures(
        FailureView.OPEN, target=connection, error_class=error_class, limit=1_000_000
    )
    items = [item for item in items if item.status != WorkStatus.LEASED]
    items.sort(key=lambda item: item.id)
    return _act(ledger, items, "retry", lambda i: ledger.retry_work(i, actor, note=note))


def resolve_failures(
    ledger: Ledger, ids: Sequence[int], actor: str, note: str
) -> list[ActionOutcome]:
    """Close these failures without success (e.g. fixed by hand); audited with the note."""
    if not note.strip():
        raise ValueError("resolving needs a note saying why")
    items = _known(ledger, ids)
    return _act(ledger, items, "resolve", lambda i: ledger.resolve_work(i, actor, note))
