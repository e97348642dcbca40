"""Fixtures for the engine tests: a controllable clock and a migrated SQLite ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from tests.engine.fakes import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade_to_head(engine)
    yield Ledger(engine, clock=clock)
    engine.dispose()
