"""Crash points, tried one by one: the engine in-process (fake source and target, a real
SQLite ledger) dies between two ledger writes — after write 1, after write 2, … after
the last write of a cycle — and a new process finishes the work.

Random SIGKILLs (test_crash.py) land where time is spent; this enumerates every
boundary between two committed ledger transactions, where the invariants are most
fragile (an invoice recorded but its write-back not yet queued, an intent committed but
the vendor call not yet made). Reduced runs try every third boundary, the full suite
every one. After each crash: exactly one invoice per valid deal, every deal's outcome
written back (invoice or error), no intent left open, no work left queued.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from billsync.sync.engine.cycle import run_cycle
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from tests.engine.fakes import Clock, Crash, FakeSource, FakeTarget, build, make_deal
from tests.reliability.chaos import Size
from tests.reliability.summary import Tally

SUITE = "crash"
VALID = 5


class CrashingLedger(Ledger):
    """Dies (raises `Crash`, which nothing catches) when write number `crash_at` is
    about to begin, and refuses every write after it: a dead process writes nothing."""

    def __init__(self, *args, crash_at: int | None = None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.crash_at = crash_at
        self.writes = 0

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        self.writes += 1
        if self.crash_at is not None and self.writes >= self.crash_at:
            raise Crash(f"killed before write {self.writes}")
        with super()._write() as conn:
            yield conn


def _world() -> tuple[FakeSource, FakeTarget]:
    deals = [make_deal(n, amount_lines=1 + n % 2) for n in range(VALID)]
    deals.append(make_deal(VALID, lines=(), amount=0))  # no products: needs attention
    return FakeSource(deals), FakeTarget()


def _cycle(db_file: Path, source: FakeSource, target: FakeTarget, clock: Clock, **kw) -> int:  # type: ignore[no-untyped-def]
    engine = create_ledger_engine(f"sqlite:///{db_file}")
    ledger = CrashingLedger(engine, clock=clock, **kw)
    try:
        run_cycle(build(ledger, source, target, clock))
    finally:
        engine.dispose()
    return ledger.writes


def _problems(db_file: Path, source: FakeSource, target: FakeTarget) -> list[str]:
    problems = []
    per_deal = target.per_deal()
    for deal in source.deals[:VALID]:
        if per_deal.get(deal.id) != 1:
            problems.append(f"deal {deal.id}: {per_deal.get(deal.id, 0)} invoices")
        if deal.id not in source.written:
            problems.append(f"deal {deal.id}: no write-back")
    rejected = source.deals[VALID].id
    if rejected in per_deal or rejected not in source.errors_written:
        problems.append(f"deal {rejected}: not rejected with its error shown")
    engine = sa.create_engine(f"sqlite:///{db_file}")
    with engine.connect() as conn:
        open_intents = conn.execute(
            sa.text("SELECT deal_id, state FROM deals WHERE state IN ('invoicing', 'failed')")
        ).all()
        queued = conn.execute(
            sa.text(
                "SELECT kind, key, status FROM work_items WHERE status IN ('pending', 'leased')"
            )
        ).all()
    engine.dispose()
    problems += [f"intent left open: {row}" for row in open_intents]
    problems += [f"work left queued: {row}" for row in queued]
    return problems


def test_a_crash_between_any_two_ledger_writes(tmp_path: Path, size: Size, tally: Tally) -> None:
    template = tmp_path / "template.db"
    migrated = create_ledger_engine(f"sqlite:///{template}")
    upgrade_to_head(migrated)
    migrated.dispose()  # closes the WAL, so the file alone is the whole database
    # A clean cycle, to count its writes.
    clean = tmp_path / "clean.db"
    shutil.copy(template, clean)
    source, target = _world()
    writes = _cycle(clean, source, target, Clock())
    assert _problems(clean, source, target) == [], "the clean cycle itself is wrong"
    points = range(1, writes + 1) if size.full else range(1, writes + 1, 3)
    problems: list[str] = []
    for point in points:
        db = tmp_path / f"crash-{point}.db"
        shutil.copy(template, db)
        source, target, clock = *_world(), Clock()
        with suppress(Crash):
            _cycle(db, source, target, clock, crash_at=point)
        for _ in range(3):  # the next runs, after the dead run's lease expired
            clock.advance(minutes=5)
            _cycle(db, source, target, clock)
        tally.tried(SUITE)
        problems += [f"crash before write {point}: {p}" for p in _problems(db, source, target)]
        db.unlink()
    print(f"{len(points)} crash points of {writes} ledger writes in one cycle")
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found[:30])
