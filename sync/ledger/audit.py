"""The append-only audit trail. There is deliberately no update or delete here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from billsync.sync.ledger.base import Store, to_record
from billsync.sync.ledger.models import AuditEntry
from billsync.sync.ledger.schema import audit

# Built once: every invoice and every failed attempt appends a row.
_INSERT = sa.insert(audit).returning(audit.c.id)


def insert_audit(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None,
) -> int:
    """Append one row on ``conn``, inside the caller's transaction, so an operator
    action and its audit row commit (or roll back) together."""
    result = conn.execute(
        _INSERT,
        {"at": at, "actor": actor, "action": action, "subject": subject, "details": details or {}},
    )
    return int(result.scalar_one())


class AuditStore(Store):
    def append_audit(
        self, actor: str, action: str, subject: str, details: dict[str, Any] | None = None
    ) -> int:
        """Record who did what to which subject; returns the new row id."""
        with self._write() as conn:
            return insert_audit(
                conn, at=self._now(), actor=actor, action=action, subject=subject, details=details
            )

    def audit_for(self, subject: str, limit: int = 1000) -> list[AuditEntry]:
        """Oldest first, the order an auditor reads a history in."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(audit).where(audit.c.subject == subject).order_by(audit.c.id).limit(limit)
            ).all()
        return [to_record(AuditEntry, row) for row in rows]

    def recent_audit(self, limit: int = 50) -> list[AuditEntry]:
        """Newest first, for the ops page."""
        with self._read() as conn:
            rows = conn.execute(sa.select(audit).order_by(audit.c.id.desc()).limit(limit)).all()
        return [to_record(AuditEntry, row) for row in rows]
