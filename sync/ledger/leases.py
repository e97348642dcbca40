"""The run lease and the run log: who may run a cycle now, and what past cycles did."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from billsync.sync.ledger.base import Store, insert_for, require_positive, to_record
from billsync.sync.ledger.models import Lease, Run
from billsync.sync.ledger.schema import leases, runs

FREE = ""  # the holder of a released lease: its row stays, so its token keeps counting


class LeaseLost(Exception):
    """This run no longer holds the current lease token: another run took over (this one
    was frozen or cut off past its lease). It must stop before its next vendor write."""

    def __init__(self, fence: Fence) -> None:
        super().__init__(
            f"lease {fence.name!r} (token {fence.token}) is no longer held by {fence.holder}"
        )
        self.fence = fence


@dataclass
class Fence:
    """A holder's claim on a lease, as acquired: the token every fenced write presents.

    ``lost`` is set by whoever learns first that the lease is gone (the heartbeat, a
    renewal, a fenced write); the invoice stage checks it before each create call."""

    name: str
    holder: str
    token: int
    lost: threading.Event = field(default_factory=threading.Event, compare=False)

    def check(self) -> None:
        """Raise LeaseLost if the lease is known to be lost (no database read)."""
        if self.lost.is_set():
            raise LeaseLost(self)


class LeaseStore(Store):
    """Named leases with an expiry, so a crashed holder cannot block others forever.

    Expiry uses the application clock of each process; keep hosts NTP-synced and
    the TTL well above any plausible skew. Each acquisition by a new holder raises the
    lease's token (fencing): `fenced` writes succeed only for the current token, so
    expiry being decided by clocks never lets two holders write at once.
    """

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> int | None:
        """Take the lease if it is free, expired or already ours; its token when we hold
        it (≥ 1, so truthy), None when someone else does.

        One statement (INSERT … ON CONFLICT DO UPDATE … WHERE expired-or-ours), so two
        processes racing for a free or expired lease cannot both win: the database
        serialises the conflicting rows on both SQLite and PostgreSQL. Re-acquiring our
        own lease extends it and keeps its token (the same claim goes on).
        """
        require_positive(ttl, "lease ttl")
        if holder == FREE:
            raise ValueError("a lease holder must be named")
        now = self._now()
        with self._write() as conn:
            stmt = insert_for(conn, leases).values(
                name=name, holder=holder, acquired_at=now, expires_at=now + ttl, token=1
            )
            ours = leases.c.holder == stmt.excluded.holder
            upsert = stmt.on_conflict_do_update(
                index_elements=[leases.c.name],
                set_={
                    "holder": stmt.excluded.holder,
                    "expires_at": stmt.excluded.expires_at,
                    # Re-acquiring our own lease extends it; acquired_at keeps the start.
                    "acquired_at": sa.case(
                        (ours, leases.c.acquired_at), else_=stmt.excluded.acquired_at
                    ),
                    "token": sa.case((ours, leases.c.token), else_=leases.c.token + 1),
                },
                where=sa.or_(leases.c.expires_at <= now, leases.c.holder == holder),
            ).returning(leases.c.token)
            row = conn.execute(upsert).first()
            return None if row is None else int(row.token)

    def acquire_fence(self, name: str, holder: str, ttl: timedelta) -> Fence | None:
        """`acquire_lease`, with the claim as a Fence for fenced writes."""
        token = self.acquire_lease(name, holder, ttl)
        return None if token is None else Fence(name, holder, token)

    def renew_lease(
        self, name: str, holder: str, ttl: timedelta, *, fence: Fence | None = None
    ) -> bool:
        """Extend our lease; False if someone else holds it now (stop working). With a
        fence, only that very claim is extended, and a failure marks the fence lost."""
        require_positive(ttl, "lease ttl")
        now = self._now()
        where = [leases.c.name == name, leases.c.holder == holder]
        if fence is not None:
            where.append(leases.c.token == fence.token)
        with self._write() as conn:
            result = conn.execute(sa.update(leases).where(*where).values(expires_at=now + ttl))
            renewed = result.rowcount == 1
        if not renewed and fence is not None:
            fence.lost.set()
        return renewed

    def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease back; only its holder can, so a late finisher cannot free a
        lease that has since passed to another process. The row stays (holder ``''``,
        expired now) so the next acquisition's token still counts up from it."""
        if holder == FREE:
            return False
        now = self._now()
        with self._write() as conn:
            result = conn.execute(
                sa.update(leases)
                .where(leases.c.name == name, leases.c.holder == holder)
                .values(holder=FREE, expires_at=now)
            )
            return result.rowcount == 1

    def get_lease(self, name: str) -> Lease | None:
        """The current row, expired or not (for `status` and the exit-3 message); None
        when the lease was never taken or was released."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(leases).where(leases.c.name == name, leases.c.holder != FREE)
            ).first()
        return None if row is None else to_record(Lease, row)

    def check_fence(self, fence: Fence) -> None:
        """Raise LeaseLost unless ``fence`` is still the lease's current claim.

        Inside a write (a `fenced` block, or `fence_in` from a store's own write) the
        lease row is read FOR SHARE: a takeover (which updates that row) waits until the
        fenced transaction commits, so a write is either before the takeover or refused.
        """
        with self._write() as conn:
            fence_in(conn, fence)

    @contextmanager
    def fenced(self, fence: Fence | None) -> Iterator[None]:
        """One write transaction (a ledger `batch`) that commits only if ``fence`` is the
        current claim when it begins; the claim cannot change until it ends. None: a
        plain batch (tools that run outside a cycle hold no lease)."""
        with self.batch():
            if fence is not None:
                self.check_fence(fence)
            yield


_FENCE = (
    sa.select(leases.c.token)
    .where(
        leases.c.name == sa.bindparam("f_name"),
        leases.c.holder == sa.bindparam("f_holder"),
        leases.c.token == sa.bindparam("f_token"),
    )
    .with_for_update(read=True)
)


def fence_in(conn: Connection, fence: Fence | None) -> None:
    """The fencing check, in the caller's transaction (see `LeaseStore.check_fence`)."""
    if fence is None:
        return
    params = {"f_name": fence.name, "f_holder": fence.holder, "f_token": fence.token}
    if conn.execute(_FENCE, params).first() is None:
        fence.lost.set()
        raise LeaseLost(fence)


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
