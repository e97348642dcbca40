"""The retry queue: work that failed (or must happen later) as a small state machine.

    pending --lease_due_work--> leased --complete_work--> done
       ^                          |
       +------ fail_work ---------+--fail_work(dead=True)--> dead --retry_work--> pending
                                                               \\--resolve_work--> resolved

The row id never changes; attempts rise when an item is leased (so a worker that
crashes mid-attempt still uses one up); the last error is stored beside the item.
This module is the workers' side; queue_admin.py is the operators' side.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from billsync.sync.ledger.audit import insert_audit
from billsync.sync.ledger.base import Store, dialect_insert, require_positive, to_record
from billsync.sync.ledger.models import WorkItem, WorkStatus
from billsync.sync.ledger.schema import work_items
from billsync.sync.ledger.types import UTCDateTime

WORK_FAILED = "work.failed"
"""The audit action of one failed attempt of a work item."""

_PENDING = WorkStatus.PENDING.value
_LEASED = WorkStatus.LEASED.value
_DEAD = WorkStatus.DEAD.value
_RESOLVED = WorkStatus.RESOLVED.value
_DONE = WorkStatus.DONE.value

_c = work_items.c


@functools.cache
def _enqueue_statement(dialect: str) -> sa.Insert:
    """The upsert behind `WorkQueue.enqueue`, built once per dialect (see
    base.dialect_insert); rows come as bind parameters named like the columns."""
    stmt = dialect_insert(dialect, work_items)
    new = stmt.excluded
    leased = _c.status == _LEASED
    held = sa.and_(
        sa.or_(_c.status == _DEAD, _c.status == _RESOLVED),
        _c.revision.is_not(None),
        _c.revision.is_not_distinct_from(new.revision),
        _c.mapping_hash.is_not_distinct_from(new.mapping_hash),
    )
    keep = sa.or_(leased, held)
    set_: dict[str, Any] = {
        "payload": new.payload,
        "revision": new.revision,
        "mapping_hash": new.mapping_hash,
        "updated_at": new.updated_at,
        "status": sa.case((keep, _c.status), else_=new.status),
        "next_attempt_at": sa.case((held, _c.next_attempt_at), else_=new.next_attempt_at),
        "requeued": sa.case((leased, sa.true()), else_=sa.false()),
        "attempts": sa.case((keep, _c.attempts), else_=0),
    }
    for column in ("last_error_class", "last_error_code", "last_error_message"):
        set_[column] = sa.case((keep, _c[column]), else_=sa.null())
    return stmt.on_conflict_do_update(index_elements=[_c.kind, _c.key], set_=set_).returning(
        *work_items.c
    )


def _holding_bound(with_holder: bool) -> sa.ColumnElement[bool]:
    """`WorkQueue._holding` with bind parameters ``b_id`` and ``b_holder``."""
    item = _c.id == sa.bindparam("b_id")
    if not with_holder:
        return sa.and_(item, sa.or_(_c.status == _PENDING, _c.status == _LEASED))
    return sa.and_(item, _c.status == _LEASED, _c.leased_by == sa.bindparam("b_holder"))


@functools.cache
def _complete_statement(with_holder: bool) -> sa.Update:
    """`WorkQueue.complete_work`'s update; ``updated_at`` comes as a parameter."""
    return (
        sa.update(work_items)
        .where(_holding_bound(with_holder))
        .values(
            status=sa.case((_c.requeued, _PENDING), else_=_DONE),
            attempts=sa.case((_c.requeued, 0), else_=_c.attempts),
            requeued=False,
            leased_by=None,
            lease_expires_at=None,
            last_error_class=None,
            last_error_code=None,
            last_error_message=None,
        )
    )


def _time(value: datetime) -> sa.BindParameter[datetime]:
    # A typed bind, so values used inside CASE still go through UTCDateTime.
    return sa.bindparam(None, value, type_=UTCDateTime())


class WorkQueue(Store):
    def enqueue(
        self,
        kind: str,
        key: str,
        payload: dict[str, Any],
        next_attempt_at: datetime,
        *,
        revision: str | None = None,
        mapping_hash: str | None = None,
    ) -> WorkItem:
        """Queue work for (kind, key); enqueueing a known key reuses its row.

        What happens to an existing row, by its status:
        - pending, done, or dead/resolved built from another revision or mapping:
          reset to pending with the new payload, attempts 0, errors cleared;
        - dead or resolved with the same (non-NULL) revision and the same mapping
          hash: left as it is, because nothing changed and it would fail again
          (an operator's retry_work or rearm_invalid_work revives it);
        - leased: payload and schedule are updated and ``requeued`` is set, so the
          holder's complete/fail sends the row back to pending instead of losing
          the new work; the holder's lease is not disturbed.
        """
        now = self._now()
        with self._write() as conn:
            row = conn.execute(
                _enqueue_statement(conn.dialect.name),
                {
                    "kind": kind,
                    "key": key,
                    "payload": payload,
                    "status": _PENDING,
                    "attempts": 0,
                    "next_attempt_at": next_attempt_at,
                    "revision": revision,
                    "mapping_hash": mapping_hash,
                    "requeued": False,
                    "created_at": now,
                    "updated_at": now,
                },
            ).one()
        return to_record(WorkItem, row)

    def lease_due_work(
        self,
        now: datetime,
        limit: int,
        holder: str,
        lease_for: timedelta,
        *,
        kinds: tuple[str, ...] | None = None,
    ) -> list[WorkItem]:
        """Lease up to ``limit`` due items to ``holder`` until ``now + lease_for``.

        Due means pending with next_attempt_at <= now, or leased with an expired
        lease (its worker died). PostgreSQL: the candidates are selected FOR UPDATE
        SKIP LOCKED, so several workers share one queue and never receive the same
        item. SQLite: the transaction holds the write lock from BEGIN IMMEDIATE, so
        selection and update are one atomic step. ``kinds`` restricts the lease to
        some kinds of work (each stage leases its own).
        """
        require_positive(lease_for, "lease_for")
        due = sa.or_(
            sa.and_(_c.status == _PENDING, _c.next_attempt_at <= now),
            sa.and_(_c.status == _LEASED, _c.lease_expires_at <= now),
        )
        if kinds is not None:
            due = sa.and_(due, _c.kind.in_(kinds))
        with self._write() as conn:
            ids = (
                conn.execute(
                    sa.select(_c.id)
                    .where(due)
                    .order_by(_c.next_attempt_at, _c.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            if not ids:
                return []
            rows = conn.execute(
                sa.update(work_items)
                .where(_c.id.in_(ids), due)
                .values(
                    status=_LEASED,
                    leased_by=holder,
                    lease_expires_at=now + lease_for,
                    attempts=_c.attempts + 1,
                    updated_at=now,
                )
                .returning(*work_items.c)
            ).all()
        items = [to_record(WorkItem, row) for row in rows]
        return sorted(items, key=lambda item: (item.next_attempt_at, item.id))

    def _holding(self, item_id: int, holder: str | None) -> sa.ColumnElement[bool]:
        # Without a holder the caller acts on any open item; with one, only on an
        # item it still holds, so a worker whose lease expired and passed to another
        # worker cannot overwrite that worker's outcome.
        if holder is None:
            return sa.and_(_c.id == item_id, _c.status.in_((_PENDING, _LEASED)))
        return sa.and_(_c.id == item_id, _c.status == _LEASED, _c.leased_by == holder)

    def complete_work(self, item_id: int, *, holder: str | None = None) -> bool:
        """Mark done (or pending again if the key was re-enqueued meanwhile)."""
        params: dict[str, Any] = {"b_id": item_id, "updated_at": self._now()}
        if holder is not None:
            params["b_holder"] = holder
        with self._write() as conn:
            result = conn.execute(_complete_statement(holder is not None), params)
            return result.rowcount == 1

    def fail_work(
        self,
        item_id: int,
        error_class: str,
        code: str | None,
        message: str,
        next_attempt_at: datetime,
        dead: bool,
        *,
        holder: str | None = None,
        count_attempt: bool = False,
    ) -> bool:
        """Record a failed attempt: retry at ``next_attempt_at``, or ``dead`` for an
        operator. The caller owns the backoff policy and the attempt limit. A key
        re-enqueued during the attempt goes back to pending on its new schedule.

        Leasing counts attempts; ``count_attempt`` counts one for a failure recorded
        without a lease (the first failure, met inside the run). Every failed attempt
        leaves an audit row in the same transaction: the attempt history `billsync
        failures show` prints, and the monotonic source of `billsync_failures_total`.
        """
        failed_status = _DEAD if dead else _PENDING
        attempts = _c.attempts + 1 if count_attempt else _c.attempts
        with self._write() as conn:
            row = conn.execute(
                sa.update(work_items)
                .where(self._holding(item_id, holder))
                .values(
                    status=sa.case((_c.requeued, _PENDING), else_=failed_status),
                    next_attempt_at=sa.case(
                        (_c.requeued, _c.next_attempt_at), else_=_time(next_attempt_at)
                    ),
                    attempts=sa.case((_c.requeued, 0), else_=attempts),
                    requeued=False,
                    leased_by=None,
                    lease_expires_at=None,
                    last_error_class=error_class,
                    last_error_code=code,
                    last_error_message=message,
                    updated_at=self._now(),
                )
                .returning(_c.attempts, _c.status)
            ).first()
            if row is None:
                return False
            insert_audit(
                conn,
                at=self._now(),
                actor=holder or "engine",
                action=WORK_FAILED,
                subject=f"work_item:{item_id}",
                details={
                    "attempts": row.attempts,
                    "error_class": error_class,
                    "code": code,
                    "message": message,
                    "dead": row.status == _DEAD,
                },
            )
            return True
