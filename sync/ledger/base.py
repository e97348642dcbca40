"""What every ledger store shares: the engine, the clock and two dialect helpers."""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row

from sync.ledger.database import WRITE_OPTION

Clock = Callable[[], datetime]
R = TypeVar("R")

# One writer lock per SQLite engine, shared by every store (and Ledger) built on it.
# SQLite admits one writer; without this, threads of one process queue inside
# sqlite3's busy handler, which sleeps in growing steps (up to 100 ms) and wakes
# late: the webhook receiver's p99 went from tens to hundreds of milliseconds under
# 32 concurrent deliveries. A Python lock hands the file over the moment it is free.
# Other processes still meet busy_timeout, as before.
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_SQLITE_WRITERS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> AbstractContextManager[Any]:
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _SQLITE_WRITERS_GUARD:
        lock = _SQLITE_WRITERS.get(engine)
        if lock is None:
            lock = _SQLITE_WRITERS[engine] = threading.RLock()
        return lock


def utc_now() -> datetime:
    return datetime.now(UTC)


class Store:
    """Base of the ledger's stores. Each public method is one short transaction.

    Writes go through ``_write()`` (BEGIN IMMEDIATE on SQLite, see database.py);
    reads through ``_read()``. Nothing is cached between calls, so several processes
    can share one database.
    """

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._write_lock = _writer_lock(engine)
        self._clock = clock

    @property
    def engine(self) -> Engine:
        return self._engine

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return timezone-aware datetimes")
        return now

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._write_lock, self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            yield conn


def insert_for(conn: Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with ON CONFLICT support for the connection's dialect.

    Both dialects spell ``on_conflict_do_nothing`` / ``on_conflict_do_update`` the
    same way, which is what makes duplicate-safe inserts race-free on both.
    """
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the ledger does not support the {name} dialect")


def to_record(cls: type[R], row: Row[Any]) -> R:
    """Copy the columns a record declares out of a row (extra columns are ignored)."""
    mapping = row._mapping
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    return cls(**{f.name: mapping[f.name] for f in fields})


def require_positive(duration: timedelta, what: str) -> None:
    if duration <= timedelta(0):
        raise ValueError(f"{what} must be a positive duration, got {duration}")
