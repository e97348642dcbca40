"""Read-only queries for the ops surface (`billsync failures`, `billsync status`, and
the web ops page built on the same functions): the failure log over the retry queue,
and the small aggregates a status view shows.

Which work items are *failures*: the queue also holds routine work (a write-back
queued after every invoice, with no error), so an item counts as a failure only once
an attempt failed. The views (``FailureView``):

- ``open``: still a problem — pending or leased with an error recorded (billsync
  retries it by itself), or ``dead`` (waits for an operator);
- ``dead``: only the items waiting for an operator;
- ``resolved``: closed by an operator (or by a later run that succeeded) without the
  original attempt succeeding;
- ``all``: open and resolved together.

A ``done`` item is not listed: success clears its error, so nothing marks it as
having failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from billsync.sync.ledger.base import Store, to_record
from billsync.sync.ledger.models import AuditEntry, DealRecord, WorkItem, WorkStatus
from billsync.sync.ledger.schema import (
    audit,
    credentials,
    cursors,
    deals,
    discrepancies,
    work_items,
)

_c = work_items.c

QUOTA_SUFFIX = ".quota"


def quota_cursor(source: str) -> str:
    """The cursors row holding the deal source's API allocation as last seen by a run
    (JSON: ``used``, ``max``, ``floor_percent``, ``stopped``), written by
    `quota_cursor_value`, named after the source's connection (``<source>.quota``).
    Not a feed position: `status` shows it under the source's quota, not under cursors."""
    return f"{source}{QUOTA_SUFFIX}"


class FailureView(StrEnum):
    OPEN = "open"
    DEAD = "dead"
    RESOLVED = "resolved"
    ALL = "all"


def _view_condition(view: FailureView) -> sa.ColumnElement[bool]:
    retrying = sa.and_(
        _c.status.in_((WorkStatus.PENDING.value, WorkStatus.LEASED.value)),
        _c.last_error_class.is_not(None),
    )
    dead = _c.status == WorkStatus.DEAD.value
    resolved = _c.status == WorkStatus.RESOLVED.value
    if view is FailureView.OPEN:
        return sa.or_(retrying, dead)
    if view is FailureView.DEAD:
        return dead
    if view is FailureView.RESOLVED:
        return resolved
    return sa.or_(retrying, dead, resolved)


def payload_connection() -> sa.ColumnElement[Any]:
    """A work item's connection: invoice and write-back items name their target,
    payment-feed items their provider (both hold the connection's name)."""
    return sa.func.coalesce(_c.payload["target"].as_string(), _c.payload["provider"].as_string())


def quota_cursor_value(
    used: int | None, maximum: int | None, floor_percent: str, stopped: bool
) -> str:
    """The `quota_cursor` value for a run to store (the format `status` reads back)."""
    return json.dumps(
        {"used": used, "max": maximum, "floor_percent": floor_percent, "stopped": stopped}
    )


@dataclass(frozen=True)
class CursorRow:
    name: str
    value: str
    updated_at: datetime


@dataclass(frozen=True)
class CredentialRow:
    """A credentials row. ``data`` holds live tokens: callers extract what they show
    (expiry times) and never print the rest."""

    name: str
    data: dict[str, Any]
    version: int
    updated_at: datetime


class OpsReads(Store):
    """The reads the ops surface makes that no single store offers."""

    def failures(
        self,
        view: FailureView = FailureView.OPEN,
        *,
        target: str | None = None,
        error_class: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
    ) -> list[WorkItem]:
        """Failed work items in ``view``, newest activity first.

        ``target`` matches the item's connection (its target or provider); ``since``
        keeps items whose last activity (``updated_at``: the last failure, retry or
        resolve) is at or after it."""
        query = sa.select(work_items).where(_view_condition(FailureView(view)))
        if target is not None:
            query = query.where(payload_connection() == target)
        if error_class is not None:
            query = query.where(_c.last_error_class == error_class)
        if since is not None:
            query = query.where(_c.updated_at >= since)
        query = query.order_by(_c.updated_at.desc(), _c.id.desc()).limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [to_record(WorkItem, row) for row in rows]

    def count_failures(self, view: FailureView = FailureView.OPEN) -> int:
        with self._read() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(work_items).where(_view_condition(view))
            ).scalar_one()
        return int(count)

    def is_failure(self, item: WorkItem) -> bool:
        """Whether ``item`` belongs to the failure log (the ``all`` view)."""
        if item.status in (WorkStatus.DEAD, WorkStatus.RESOLVED):
            return True
        return (
            item.status in (WorkStatus.PENDING, WorkStatus.LEASED)
            and item.last_error_class is not None
        )

    def audit_for_subjects(self, subjects: Sequence[str]) -> dict[str, list[AuditEntry]]:
        """Audit rows of several subjects in one read, oldest first per subject."""
        found: dict[str, list[AuditEntry]] = {subject: [] for subject in subjects}
        if not subjects:
            return found
        with self._read() as conn:
            rows = conn.execute(
                sa.select(audit).where(audit.c.subject.in_(list(subjects))).order_by(audit.c.id)
            ).all()
        for row in rows:
            found[str(row.subject)].append(to_record(AuditEntry, row))
        return found

    def deal_rows(self, deal_id: str) -> list[DealRecord]:
        """The deal's row for every target it has one for."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(deals).where(deals.c.deal_id == deal_id).order_by(deals.c.target)
            ).all()
        return [to_record(DealRecord, row) for row in rows]

    def work_depth_by_kind(self) -> dict[str, dict[str, int]]:
        """Items per kind and status (only the pairs that exist)."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(_c.kind, _c.status, sa.func.count()).group_by(_c.kind, _c.status)
            ).all()
        depth: dict[str, dict[str, int]] = {}
        for kind, status, n in rows:
            depth.setdefault(str(kind), {})[str(status)] = int(n)
        return depth

    def failures_by_class(self) -> dict[str, int]:
        """Open failures per error class."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(_c.last_error_class, sa.func.count())
                .where(_view_condition(FailureView.OPEN))
                .group_by(_c.last_error_class)
            ).all()
        return {str(cls or "unknown"): int(n) for cls, n in rows}

    def open_failures_by_connection(self) -> dict[str, int]:
        """Open failures per connection (items that name none are left out)."""
        connection = payload_connection()
        with self._read() as conn:
            rows = conn.execute(
                sa.select(connection, sa.func.count())
                .where(_view_condition(FailureView.OPEN), connection.is_not(None))
                .group_by(connection)
            ).all()
        return {str(name): int(n) for name, n in rows}

    def all_cursors(self) -> list[CursorRow]:
        with self._read() as conn:
            rows = conn.execute(sa.select(cursors).order_by(cursors.c.name)).all()
        return [to_record(CursorRow, row) for row in rows]

    def credential_rows(self, prefix: str = "") -> list[CredentialRow]:
        query = sa.select(credentials).order_by(credentials.c.name)
        if prefix:
            query = query.where(credentials.c.name.startswith(prefix, autoescape=True))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            CredentialRow(str(r.name), dict(r.data), int(r.version), r.updated_at) for r in rows
        ]

    def open_discrepancy_counts(self) -> dict[str, int]:
        """Open discrepancies per kind."""
        dc = discrepancies.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(dc.kind, sa.func.count())
                .where(dc.resolved_at.is_(None))
                .group_by(dc.kind)
                .order_by(dc.kind)
            ).all()
        return {str(kind): int(n) for kind, n in rows}
