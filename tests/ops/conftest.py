"""Ops fixtures: a migrated ledger on SQLite and on PostgreSQL, and the CLI in-process.

``ledger_url`` is parametrised over both backends like tests/ledger; the PostgreSQL
case takes a fresh database from ``postgres_url`` (skips locally without a server,
fails in CI). ``cli`` runs `billsync …` in-process (Typer's CliRunner) against the
ledger at ``ledger_url``: much faster than a subprocess per call, same code path.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner, Result

from billsync.sync.cli.app import app
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'billsync.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'billsync.db'}"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 31, 12, 0, tzinfo=UTC))


def open_ledger(url: str, clock: Clock) -> Iterator[Ledger]:
    engine = create_ledger_engine(url)
    upgrade_to_head(engine)
    yield Ledger(engine, clock=clock)
    engine.dispose()


@pytest.fixture
def ledger(ledger_url: str, clock: Clock) -> Iterator[Ledger]:
    yield from open_ledger(ledger_url, clock)


@pytest.fixture
def sqlite_ledger(sqlite_url: str, clock: Clock) -> Iterator[Ledger]:
    yield from open_ledger(sqlite_url, clock)


class Cli:
    """`billsync …` in-process against one ledger URL."""

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.url = url
        for name in list(os.environ):
            if name.startswith("BILLSYNC_"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("BILLSYNC_LEDGER__URL", url)
        monkeypatch.setenv("BILLSYNC_LOGGING__FORMAT", "json")
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        try:
            return self.runner.invoke(app, list(args), obj={}, catch_exceptions=False)
        finally:
            # The command pointed logging at the runner's streams, closed by now.
            structlog.reset_defaults()
            logging.getLogger().handlers[:] = []

    def json(self, *args: str, code: int = 0) -> Any:
        result = self(*args)
        assert result.exit_code == code, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli(ledger: Ledger, ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(ledger_url, monkeypatch)


@pytest.fixture
def sqlite_cli(sqlite_ledger: Ledger, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(sqlite_url, monkeypatch)
