"""The run lease and the run log: who may run a cycle now, and what past cycles did."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from sync.ledger.base import Store, insert_for, require_positive, to_record
from sync.ledger.models import Lease, Run
from sync.ledger.schema import leases, runs


class LeaseStore(Store):
    """Named leases with an expiry, so a crashed holder cannot block others forever.

    Expiry uses the application clock of each process; keep hosts NTP-synced and
    the TTL well above any plausible skew.
    """

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take the lease if it is free, expired or already ours; True when we hold it.

        One statement (INSERT … ON CONFLICT DO UPDATE … WHERE expired-or-ours), so two
        processes racing for a free or expired lease cannot both win: the database
        serialises the conflicting rows on both SQLite and PostgreSQL.
        """
        require_positive(ttl, "lease ttl")
        now = self._now()
        with self._write() as conn:
            stmt = insert_for(conn, leases).values(
                name=name, holder=holder, acquired_at=now, expires_at=now + ttl
            )
            upsert = stmt.on_conflict_do_update(
                index_elements=[leases.c.name],
                set_={
                    "holder": stmt.excluded.holder,
                    "expires_at": stmt.excluded.expires_at,
                    # Re-acquiring our own lease extends it; acquired_at keeps the start.
                    "acquired_at": sa.case(
                        (leases.c.holder == stmt.excluded.holder, leases.c.acquired_at),
                        else_=stmt.excluded.acquired_at,
                    ),
                },
                where=sa.or_(leases.c.expires_at <= now, leases.c.holder == holder),
            ).returning(leases.c.name)
            return conn.execute(upsert).first() is not None

    def renew_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Extend our lease; False if someone else holds it now (stop working)."""
        require_positive(ttl, "lease ttl")
        now = self._now()
        with self._write() as conn:
            result = conn.execute(
                sa.update(leases)
                .where(leases.c.name == name, leases.c.holder == holder)
                .values(expires_at=now + ttl)
            )
            return result.rowcount == 1

    def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease back; only its holder can, so a late finisher cannot free a
        lease that has since passed to another process."""
        with self._write() as conn:
            result = conn.execute(
                sa.delete(leases).where(leases.c.name == name, leases.c.holder == holder)
            )
            return result.rowcount == 1

    def get_lease(self, name: str) -> Lease | None:
        """The current row, expired or not (for `status` and the exit-3 message)."""
        with self._read() as conn:
            row = conn.execute(sa.select(leases).where(leases.c.name == name)).first()
        return None if row is None else to_record(Lease, row)


class RunStore(Store):
    """One row per sync cycle, written at start so a crashed run is still visible."""

    def start_run(self, started_at: datetime) -> str:
        run_id = str(uuid.uuid4())
        with self._write() as conn:
            conn.execute(sa.insert(runs).values(id=run_id, started_at=started_at))
        return run_id

    def finish_run(
        self,
        run_id: str,
        outcome: str,
        summary: dict[str, Any],
        finished_at: datetime | None = None,
    ) -> bool:
        with self._write() as conn:
            result = conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(outcome=outcome, summary=summary, finished_at=finished_at or self._now())
            )
            return result.rowcount == 1

    def recent_runs(self, limit: int = 20) -> list[Run]:
        """Newest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.id).limit(limit)
            ).all()
        return [to_record(Run, row) for row in rows]
