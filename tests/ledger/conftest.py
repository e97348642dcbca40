"""Ledger fixtures: every database test runs on SQLite and on PostgreSQL.

The ``ledger_url`` fixture is parametrised over both backends; the PostgreSQL case is
marked ``postgres`` and takes a fresh database from the shared ``postgres_url``
fixture (tests/conftest.py), so it skips locally without a server and fails in CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock tests move by hand, so lease and retry expiry need no sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger' / 'billsync.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    engine = create_ledger_engine(ledger_url)
    yield engine
    engine.dispose()


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    upgrade_to_head(engine)
    return engine


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ledger(migrated: Engine, clock: FakeClock) -> Ledger:
    return Ledger(migrated, clock=clock)


@pytest.fixture
def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def run_concurrently(fn, workers: int, timeout: float = 60.0) -> list[Any]:
    """Call ``fn(i)`` from ``workers`` threads released together; return the results.

    A barrier lines the threads up so their transactions really overlap (on
    PostgreSQL each thread has its own connection and server backend).
    """
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    barrier = Barrier(workers)

    def call(i: int):
        barrier.wait(timeout)
        return fn(i)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(call, i) for i in range(workers)]
        return [f.result(timeout) for f in futures]
