"""The retry queue seen by operators: inspect, retry, resolve, re-arm.

Every operator action writes its audit row in the same transaction as the change,
so the trail cannot miss an action or record one that rolled back.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from billsync.sync.ledger.audit import insert_audit
from billsync.sync.ledger.base import Store, to_record
from billsync.sync.ledger.models import WorkItem, WorkStatus
from billsync.sync.ledger.schema import work_items

INVALID_DATA = "invalid_data"  # the error class that waits for a data or mapping change

_PENDING = WorkStatus.PENDING.value
_DEAD = WorkStatus.DEAD.value
_RESOLVED = WorkStatus.RESOLVED.value

_c = work_items.c

# Built once: the engine looks up an item for every deal it triages or invoices.
_FIND = sa.select(work_items).where(
    _c.kind == sa.bindparam("b_kind"), _c.key == sa.bindparam("b_key")
)
_FIND_MANY = sa.select(work_items).where(
    _c.kind == sa.bindparam("b_kind"), _c.key.in_(sa.bindparam("b_keys", expanding=True))
)
_KEYS_PER_QUERY = 500  # bound parameters per IN (…): see deals._IDS_PER_QUERY


def work_subject(item_id: int) -> str:
    """The audit subject of a work item."""
    return f"work_item:{item_id}"


class QueueAdmin(Store):
    def retry_work(self, item_id: int, actor: str, *, note: str | None = None) -> bool:
        """Operator: run a dead, resolved or waiting item again now, attempts reset.
        Audited in the same transaction. False if unknown, leased or done."""
        return self._operator_action(
            item_id,
            actor,
            "work.retry",
            note,
            allowed=(_DEAD, _RESOLVED, _PENDING),
            status=_PENDING,
        )

    def resolve_work(self, item_id: int, actor: str, note: str) -> bool:
        """Operator: close an item without success (e.g. fixed by hand in the target).
        Audited in the same transaction. False if unknown, leased or already closed."""
        return self._operator_action(
            item_id, actor, "work.resolve", note, allowed=(_DEAD, _PENDING), status=_RESOLVED
        )

    def _operator_action(
        self,
        item_id: int,
        actor: str,
        action: str,
        note: str | None,
        *,
        allowed: tuple[str, ...],
        status: str,
    ) -> bool:
        now = self._now()
        with self._write() as conn:
            row = conn.execute(
                sa.select(work_items).where(_c.id == item_id).with_for_update()
            ).first()
            if row is None or row.status not in allowed:
                return False
            values: dict[str, Any] = {
                "status": status,
                "requeued": False,
                "leased_by": None,
                "lease_expires_at": None,
                "updated_at": now,
            }
            if status == _PENDING:
                values.update(attempts=0, next_attempt_at=now)
            conn.execute(sa.update(work_items).where(_c.id == item_id).values(**values))
            insert_audit(
                conn,
                at=now,
                actor=actor,
                action=action,
                subject=work_subject(item_id),
                details={
                    "kind": row.kind,
                    "key": row.key,
                    "previous_status": row.status,
                    "attempts": row.attempts,
                    "last_error_class": row.last_error_class,
                    "last_error_code": row.last_error_code,
                    "note": note,
                },
            )
            return True

    def rearm_invalid_work(self, mapping_hash: str) -> int:
        """Re-arm invalid_data items built under another mapping; returns how many.

        Called at start-up with the hash of the mapping files: an item that failed
        on bad mapping gets one more try once the mapping changed, and is stamped
        with the new hash so it is not re-armed again until the next change. (A
        deal change re-arms through enqueue with the new revision.)
        """
        now = self._now()
        with self._write() as conn:
            result = conn.execute(
                sa.update(work_items)
                .where(
                    _c.last_error_class == INVALID_DATA,
                    _c.status.in_((_PENDING, _DEAD)),
                    _c.mapping_hash.is_distinct_from(mapping_hash),
                )
                .values(
                    status=_PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    mapping_hash=mapping_hash,
                    updated_at=now,
                )
            )
            return int(result.rowcount)

    def get_work(self, item_id: int) -> WorkItem | None:
        with self._read() as conn:
            row = conn.execute(sa.select(work_items).where(_c.id == item_id)).first()
        return None if row is None else to_record(WorkItem, row)

    def find_work(self, kind: str, key: str) -> WorkItem | None:
        with self._read() as conn:
            row = conn.execute(_FIND, {"b_kind": kind, "b_key": key}).first()
        return None if row is None else to_record(WorkItem, row)

    def find_work_for(self, kind: str, keys: Collection[str]) -> dict[str, WorkItem]:
        """`find_work` for many keys of one kind in one read, keyed by key."""
        found: dict[str, WorkItem] = {}
        ordered = sorted(set(keys))
        with self._read() as conn:
            for start in range(0, len(ordered), _KEYS_PER_QUERY):
                chunk = ordered[start : start + _KEYS_PER_QUERY]
                for row in conn.execute(_FIND_MANY, {"b_kind": kind, "b_keys": chunk}):
                    item = to_record(WorkItem, row)
                    found[item.key] = item
        return found

    def list_work(
        self,
        status: str | None = None,
        *,
        kind: str | None = None,
        limit: int = 100,
        after_id: int | None = None,
    ) -> list[WorkItem]:
        """Items by id; page with ``after_id`` = the last id of the previous page."""
        query = sa.select(work_items)
        if status is not None:
            query = query.where(_c.status == str(status))
        if kind is not None:
            query = query.where(_c.kind == kind)
        if after_id is not None:
            query = query.where(_c.id > after_id)
        with self._read() as conn:
            rows = conn.execute(query.order_by(_c.id).limit(limit)).all()
        return [to_record(WorkItem, row) for row in rows]

    def queue_depth(self) -> dict[str, int]:
        """Items per status, every status present (for metrics and `status`)."""
        with self._read() as conn:
            rows = conn.execute(sa.select(_c.status, sa.func.count()).group_by(_c.status)).all()
        depth = {status.value: 0 for status in WorkStatus}
        depth.update({str(status): int(n) for status, n in rows})
        return depth
