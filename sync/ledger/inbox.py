"""The webhook inbox: verified events stored raw, acknowledged, processed later.

The receiver must answer within milliseconds (vendors time a delivery out within
seconds and send it again), so it only stores; background workers claim events and
process them. Claims expire, so an event held by a crashed worker is picked up again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from billsync.sync.ledger.base import Store, insert_for, require_positive, to_record
from billsync.sync.ledger.models import InboxEvent, InboxStatus
from billsync.sync.ledger.schema import inbox

_OPEN = (InboxStatus.PENDING.value, InboxStatus.PROCESSING.value)


class InboxStore(Store):
    def store_inbox_event(
        self, provider: str, event_id: str, body: bytes, headers: dict[str, str]
    ) -> bool:
        """Store an event; False (and nothing written) if that event id is known.

        INSERT … ON CONFLICT DO NOTHING on both dialects: two deliveries of the same
        event racing each other produce one row and no error, so the receiver can
        answer 2xx to both.
        """
        if not isinstance(body, bytes):
            raise TypeError("store the raw request body as bytes, exactly as received")
        with self._write() as conn:
            stmt = insert_for(conn, inbox).values(
                provider=provider,
                event_id=event_id,
                received_at=self._now(),
                body=body,
                headers=dict(headers),
                status=InboxStatus.PENDING.value,
                attempts=0,
            )
            inserted = conn.execute(
                stmt.on_conflict_do_nothing(
                    index_elements=[inbox.c.provider, inbox.c.event_id]
                ).returning(inbox.c.id)
            ).first()
            return inserted is not None

    def claim_inbox_events(
        self, limit: int, holder: str, *, claim_for: timedelta = timedelta(minutes=5)
    ) -> list[InboxEvent]:
        """Claim up to ``limit`` events (oldest first) for processing by ``holder``.

        Takes pending events and events whose claim expired. On PostgreSQL the
        candidates are locked with FOR UPDATE SKIP LOCKED, so concurrent workers
        take disjoint sets without waiting; on SQLite the write transaction (BEGIN
        IMMEDIATE) serialises claimers. Each claim counts as an attempt.
        """
        require_positive(claim_for, "claim duration")
        now = self._now()
        claimable = sa.or_(
            inbox.c.status == InboxStatus.PENDING.value,
            sa.and_(
                inbox.c.status == InboxStatus.PROCESSING.value, inbox.c.claim_expires_at <= now
            ),
        )
        with self._write() as conn:
            ids = (
                conn.execute(
                    sa.select(inbox.c.id)
                    .where(claimable)
                    .order_by(inbox.c.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            if not ids:
                return []
            rows = conn.execute(
                sa.update(inbox)
                .where(inbox.c.id.in_(ids), claimable)
                .values(
                    status=InboxStatus.PROCESSING.value,
                    attempts=inbox.c.attempts + 1,
                    claimed_by=holder,
                    claim_expires_at=now + claim_for,
                )
                .returning(*inbox.c)
            ).all()
        return sorted((to_record(InboxEvent, row) for row in rows), key=lambda e: e.id)

    def mark_inbox_done(self, inbox_id: int) -> bool:
        return self.mark_inbox_done_many([inbox_id]) == 1

    def mark_inbox_done_many(self, inbox_ids: Sequence[int]) -> int:
        """Mark processed events done in one transaction; returns how many rows changed.
        The inbox worker marks a whole claimed batch at once: one write instead of one
        per event on a single-writer SQLite file that webhooks are being stored in."""
        if not inbox_ids:
            return 0
        with self._write() as conn:
            result = conn.execute(
                sa.update(inbox)
                .where(inbox.c.id.in_(list(inbox_ids)))
                .values(
                    status=InboxStatus.DONE.value,
                    processed_at=self._now(),
                    claimed_by=None,
                    claim_expires_at=None,
                    error=None,
                )
            )
            return int(result.rowcount)

    def mark_inbox_failed(self, inbox_id: int, error: str, *, retry: bool = False) -> bool:
        """Record a processing failure; ``retry`` puts the event back to pending
        (transient trouble), otherwise it stays failed for an operator."""
        status = InboxStatus.PENDING if retry else InboxStatus.FAILED
        with self._write() as conn:
            result = conn.execute(
                sa.update(inbox)
                .where(inbox.c.id == inbox_id)
                .values(status=status.value, claimed_by=None, claim_expires_at=None, error=error)
            )
            return result.rowcount == 1

    def release_inbox_claims(self, inbox_ids: list[int]) -> int:
        """Give claimed events back (pending, no error) without counting a failure: a
        worker shutting down leaves them for the next claimer at once rather than
        after the claim expires."""
        if not inbox_ids:
            return 0
        with self._write() as conn:
            result = conn.execute(
                sa.update(inbox)
                .where(inbox.c.id.in_(inbox_ids), inbox.c.status == InboxStatus.PROCESSING.value)
                .values(
                    status=InboxStatus.PENDING.value,
                    attempts=sa.case((inbox.c.attempts > 0, inbox.c.attempts - 1), else_=0),
                    claimed_by=None,
                    claim_expires_at=None,
                )
            )
            return int(result.rowcount)

    def get_inbox_event(self, inbox_id: int) -> InboxEvent | None:
        with self._read() as conn:
            row = conn.execute(sa.select(inbox).where(inbox.c.id == inbox_id)).first()
        return None if row is None else to_record(InboxEvent, row)

    def inbox_lag(self, now: datetime) -> timedelta:
        """Age of the oldest unprocessed event (zero when caught up): the number to
        alert on when background processing stalls."""
        with self._read() as conn:
            oldest = conn.execute(
                sa.select(sa.func.min(inbox.c.received_at)).where(inbox.c.status.in_(_OPEN))
            ).scalar_one()
        if not isinstance(oldest, datetime):
            return timedelta(0)
        return max(now - oldest, timedelta(0))

    def inbox_counts(self) -> dict[str, int]:
        """Events per status, every status present (for metrics)."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(inbox.c.status, sa.func.count()).group_by(inbox.c.status)
            ).all()
        counts = {status.value: 0 for status in InboxStatus}
        counts.update({str(status): int(n) for status, n in rows})
        return counts
