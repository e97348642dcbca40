"""Recorded disagreements between Salesforce, the ledger and the target.

Reconciliation runs every cycle and finds the same problem again and again; it must
be recorded once and stay one open row until it is resolved. History is kept: once
resolved, the same problem can open a new row.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from sync.ledger.audit import insert_audit
from sync.ledger.base import Store, insert_for, to_record
from sync.ledger.models import Discrepancy
from sync.ledger.schema import discrepancies

_c = discrepancies.c


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
