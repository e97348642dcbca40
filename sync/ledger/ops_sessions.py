"""Server-side sessions of the ops pages: who is signed in, since when, last seen when.

The server gives the browser a random session id and keeps only its SHA-256 here, so
neither the ledger nor the audit trail holds anything that signs a browser in. A
session is live while it is not revoked, was seen within the idle time and is younger
than the absolute lifetime; every page view moves ``last_seen_at``. Logout and an
operator's revoke set ``revoked_at`` (the row stays, for the record), each with its
audit row in the same transaction.

Sessions are named by a label, the first 12 hex digits of the hash: the audit trail's
actor is ``ops-web:<label>`` and `billsync ops sessions revoke LABEL` takes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from billsync.sync.ledger.audit import insert_audit
from billsync.sync.ledger.base import Store, require_positive, to_record
from billsync.sync.ledger.schema import ops_sessions

LABEL_LENGTH = 12
SESSION_LIFETIME = timedelta(hours=12)
"""The longest a session lasts, however busy: its cookie's Max-Age too."""
IDLE = "idle"
"""``revoked_by`` of a session that ended by itself after the idle time."""
_LABEL = re.compile(r"[0-9a-f]{8,64}")


@dataclass(frozen=True, slots=True)
class OpsSession:
    id_hash: str
    actor: str
    client: str | None
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def label(self) -> str:
        return self.id_hash[:LABEL_LENGTH]


def session_label(id_hash: str) -> str:
    return id_hash[:LABEL_LENGTH]


def _subject(id_hash: str) -> str:
    return f"ops-session:{session_label(id_hash)}"


def valid_label(label: str) -> bool:
    """A label an operator may revoke by: 8 to 64 lowercase hex digits (a prefix of the
    hash), so a typo can never match every session."""
    return _LABEL.fullmatch(label) is not None


class OpsSessionStore(Store):
    def create_ops_session(self, id_hash: str, actor: str, client: str | None) -> OpsSession:
        """A new live session, audited as ``ops.login`` with the client address."""
        now = self._now()
        row = {
            "id_hash": id_hash,
            "actor": actor,
            "client": client,
            "created_at": now,
            "last_seen_at": now,
            "revoked_at": None,
            "revoked_by": None,
        }
        with self._committed_write("an ops session") as conn:
            conn.execute(sa.insert(ops_sessions).values(**row))
            insert_audit(conn, at=now, actor=actor, action="ops.login",
                         subject=_subject(id_hash), details={"client": client})  # fmt: skip
        return OpsSession(**row)  # type: ignore[arg-type]

    def touch_ops_session(
        self, id_hash: str, *, idle: timedelta, lifetime: timedelta
    ) -> OpsSession | None:
        """The live session with this hash, seen now; None if unknown, revoked, idle
        too long (then marked ended by ``idle``) or past its lifetime."""
        require_positive(idle, "ops session idle time")
        require_positive(lifetime, "ops session lifetime")
        now = self._now()
        live = (
            (ops_sessions.c.id_hash == id_hash)
            & ops_sessions.c.revoked_at.is_(None)
            & (ops_sessions.c.last_seen_at > now - idle)
            & (ops_sessions.c.created_at > now - lifetime)
        )
        with self._committed_write("an ops session") as conn:
            row = conn.execute(
                sa.update(ops_sessions)
                .where(live)
                .values(last_seen_at=now)
                .returning(*ops_sessions.c)
            ).first()
            if row is not None:
                return to_record(OpsSession, row)
            conn.execute(
                sa.update(ops_sessions)
                .where(ops_sessions.c.id_hash == id_hash, ops_sessions.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_by=IDLE)
            )
        return None

    def end_ops_session(self, id_hash: str, by: str, *, action: str = "ops.logout") -> bool:
        """Revoke one session (logout); False if it had already ended."""
        now = self._now()
        with self._committed_write("an ops session") as conn:
            return _revoke(conn, [id_hash], now, by, action) == 1

    def revoke_ops_sessions(self, label: str | None, by: str) -> list[OpsSession]:
        """Revoke the live sessions whose label starts with ``label`` (every live one
        when None); returns them as they were. Each is audited ``ops.session_revoked``."""
        if label is not None and not valid_label(label):
            raise ValueError(f"{label!r} is not a session label (8 or more hex digits)")
        now = self._now()
        query = sa.select(ops_sessions).where(ops_sessions.c.revoked_at.is_(None))
        if label is not None:
            query = query.where(ops_sessions.c.id_hash.startswith(label, autoescape=True))
        with self._committed_write("an ops session") as conn:
            found = [to_record(OpsSession, row) for row in conn.execute(query).all()]
            _revoke(conn, [s.id_hash for s in found], now, by, "ops.session_revoked")
        return found

    def ops_sessions(
        self, *, idle: timedelta, lifetime: timedelta, include_ended: bool = False
    ) -> list[OpsSession]:
        """Newest first: the live sessions, or every session with ``include_ended``."""
        now = self._now()
        query = sa.select(ops_sessions).order_by(ops_sessions.c.created_at.desc())
        if not include_ended:
            query = query.where(
                ops_sessions.c.revoked_at.is_(None),
                ops_sessions.c.last_seen_at > now - idle,
                ops_sessions.c.created_at > now - lifetime,
            )
        with self._read() as conn:
            return [to_record(OpsSession, row) for row in conn.execute(query).all()]


def _revoke(conn: Connection, hashes: list[str], now: datetime, by: str, action: str) -> int:
    ended = 0
    for id_hash in hashes:
        result = conn.execute(
            sa.update(ops_sessions)
            .where(ops_sessions.c.id_hash == id_hash, ops_sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=by)
        )
        if result.rowcount == 1:
            ended += 1
            insert_audit(conn, at=now, actor=by, action=action, subject=_subject(id_hash),
                         details={})  # fmt: skip
    return ended
