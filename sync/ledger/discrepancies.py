"""Recorded disagreements between the deal source, the ledger and the target.

Reconciliation runs every cycle and finds the same problem again and again; it must
be recorded once and stay one open row until it is resolved. History is kept: once
resolved, the same problem can open a new row.

An operator may acknowledge an open row (seen, being handled; it stays open and is
re-verified like any other) or resolve it, each with a note and an audit row. The
acknowledgement lives in the row's details under ``acknowledged`` (who, when, note):
it covers what was seen, so `refresh_discrepancy` drops it when the amounts change.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from billsync.sync.ledger.audit import insert_audit
from billsync.sync.ledger.base import Store, insert_for, to_record
from billsync.sync.ledger.models import Discrepancy
from billsync.sync.ledger.schema import discrepancies

_c = discrepancies.c

ACK = "acknowledged"
"""The details key holding an operator's acknowledgement: {"at", "by", "note"}."""


class DiscrepancyView(StrEnum):
    OPEN = "open"  # every open row, acknowledged or not
    UNACKNOWLEDGED = "unacknowledged"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ALL = "all"


class UnknownDiscrepancy(LookupError):
    def __init__(self, discrepancy_id: int) -> None:
        super().__init__(
            f"no discrepancy with id {discrepancy_id}; see billsync discrepancies list"
        )
        self.discrepancy_id = discrepancy_id


class DiscrepancyClosed(ValueError):
    """The discrepancy is already resolved: there is nothing to acknowledge or resolve."""


def acknowledgement(row: Discrepancy) -> dict[str, Any] | None:
    ack = row.details.get(ACK)
    return ack if isinstance(ack, dict) else None


def open_key(kind: str, deal_id: str | None, target: str | None) -> str:
    # JSON keeps the three parts unambiguous whatever characters they contain.
    return json.dumps([kind, deal_id, target], separators=(",", ":"))


class DiscrepancyStore(Store):
    def record_discrepancy(
        self,
        kind: str,
        deal_id: str | None,
        target: str | None,
        expected: str | None,
        actual: str | None,
        details: dict[str, Any] | None = None,
    ) -> bool:
        """Open a discrepancy; False (nothing written) if one is already open for
        this (kind, deal, target). Race-safe through the unique open_key."""
        with self._write() as conn:
            stmt = insert_for(conn, discrepancies).values(
                kind=kind,
                deal_id=deal_id,
                target=target,
                expected=expected,
                actual=actual,
                details=details or {},
                detected_at=self._now(),
                open_key=open_key(kind, deal_id, target),
            )
            inserted = conn.execute(
                stmt.on_conflict_do_nothing(index_elements=[_c.open_key]).returning(_c.id)
            ).first()
            return inserted is not None

    def resolve_discrepancy(
        self,
        kind: str,
        deal_id: str | None,
        target: str | None,
        *,
        actor: str | None = None,
        note: str | None = None,
    ) -> bool:
        """Close the open discrepancy, if any. Reconciliation calls this when the facts
        agree again; an operator passes ``actor`` and the closing is audited."""
        now = self._now()
        key = open_key(kind, deal_id, target)
        with self._write() as conn:
            resolved = conn.execute(
                sa.update(discrepancies)
                .where(_c.open_key == key)
                .values(resolved_at=now, open_key=None)
                .returning(_c.id)
            ).first()
            if resolved is None:
                return False
            if actor is not None:
                insert_audit(
                    conn,
                    at=now,
                    actor=actor,
                    action="discrepancy.resolve",
                    subject=f"discrepancy:{resolved.id}",
                    details={"kind": kind, "deal_id": deal_id, "target": target, "note": note},
                )
            return True

    def open_discrepancies(self, kind: str | None = None) -> list[Discrepancy]:
        """Open rows, oldest first."""
        query = sa.select(discrepancies).where(_c.resolved_at.is_(None))
        if kind is not None:
            query = query.where(_c.kind == kind)
        with self._read() as conn:
            rows = conn.execute(query.order_by(_c.detected_at, _c.id)).all()
        return [to_record(Discrepancy, row) for row in rows]

    def discrepancies_for_deal(self, deal_id: str) -> list[Discrepancy]:
        """Open and resolved, oldest first: a deal's reconciliation history."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(discrepancies).where(_c.deal_id == deal_id).order_by(_c.id)
            ).all()
        return [to_record(Discrepancy, row) for row in rows]

    def get_discrepancy(self, discrepancy_id: int) -> Discrepancy | None:
        with self._read() as conn:
            row = conn.execute(sa.select(discrepancies).where(_c.id == discrepancy_id)).first()
        return None if row is None else to_record(Discrepancy, row)

    def list_discrepancies(
        self,
        view: DiscrepancyView = DiscrepancyView.OPEN,
        *,
        kind: str | None = None,
        limit: int = 1000,
    ) -> list[Discrepancy]:
        """Rows of one view, oldest first (resolved and all: newest first)."""
        query = sa.select(discrepancies)
        if view is DiscrepancyView.RESOLVED:
            query = query.where(_c.resolved_at.is_not(None))
        elif view is not DiscrepancyView.ALL:
            query = query.where(_c.resolved_at.is_(None))
        if kind is not None:
            query = query.where(_c.kind == kind)
        if view in (DiscrepancyView.RESOLVED, DiscrepancyView.ALL):
            query = query.order_by(_c.id.desc())
        else:
            query = query.order_by(_c.detected_at, _c.id)
        with self._read() as conn:
            rows = [to_record(Discrepancy, row) for row in conn.execute(query)]
        if view is DiscrepancyView.ACKNOWLEDGED:
            rows = [row for row in rows if acknowledgement(row) is not None]
        elif view is DiscrepancyView.UNACKNOWLEDGED:
            rows = [row for row in rows if acknowledgement(row) is None]
        return rows[:limit]

    def refresh_discrepancy(
        self,
        kind: str,
        deal_id: str | None,
        target: str | None,
        expected: str | None,
        actual: str | None,
        details: dict[str, Any],
    ) -> bool:
        """Show the open row's current amounts; True when they changed. An
        acknowledgement covered what was seen, so a change drops it."""
        key = open_key(kind, deal_id, target)
        with self._write() as conn:
            row = conn.execute(sa.select(discrepancies).where(_c.open_key == key)).first()
            if row is None or (row.expected, row.actual) == (expected, actual):
                return False
            conn.execute(
                sa.update(discrepancies)
                .where(_c.id == row.id)
                .values(expected=expected, actual=actual, details=details)
            )
            return True

    def acknowledge_discrepancy(self, discrepancy_id: int, actor: str, note: str) -> Discrepancy:
        """Mark an open row as seen by ``actor`` (it stays open), audited.
        Raises UnknownDiscrepancy, DiscrepancyClosed."""
        now = self._now()
        with self._write() as conn:
            row = self._open_row(conn, discrepancy_id)
            details = {**row.details, ACK: {"at": _iso(now), "by": actor, "note": note}}
            conn.execute(
                sa.update(discrepancies).where(_c.id == discrepancy_id).values(details=details)
            )
            insert_audit(
                conn,
                at=now,
                actor=actor,
                action="discrepancy.acknowledge",
                subject=f"discrepancy:{discrepancy_id}",
                details=_about(row, note),
            )
            updated = conn.execute(sa.select(discrepancies).where(_c.id == discrepancy_id)).one()
        return to_record(Discrepancy, updated)

    def resolve_discrepancy_id(self, discrepancy_id: int, actor: str, note: str) -> Discrepancy:
        """Close an open row by hand, audited. If the problem still holds, the next
        reconcile opens a new row for it. Raises UnknownDiscrepancy, DiscrepancyClosed."""
        now = self._now()
        with self._write() as conn:
            row = self._open_row(conn, discrepancy_id)
            conn.execute(
                sa.update(discrepancies)
                .where(_c.id == discrepancy_id)
                .values(resolved_at=now, open_key=None)
            )
            insert_audit(
                conn,
                at=now,
                actor=actor,
                action="discrepancy.resolve",
                subject=f"discrepancy:{discrepancy_id}",
                details=_about(row, note),
            )
            updated = conn.execute(sa.select(discrepancies).where(_c.id == discrepancy_id)).one()
        return to_record(Discrepancy, updated)

    def _open_row(self, conn: Any, discrepancy_id: int) -> Discrepancy:
        found = conn.execute(sa.select(discrepancies).where(_c.id == discrepancy_id)).first()
        if found is None:
            raise UnknownDiscrepancy(discrepancy_id)
        row = to_record(Discrepancy, found)
        if row.resolved_at is not None:
            raise DiscrepancyClosed(
                f"discrepancy {discrepancy_id} was resolved at {_iso(row.resolved_at)}"
            )
        return row


def _about(row: Discrepancy, note: str) -> dict[str, Any]:
    return {"kind": row.kind, "deal_id": row.deal_id, "target": row.target, "note": note}


def _iso(moment: datetime) -> str:
    return moment.isoformat()
