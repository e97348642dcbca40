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

from billsync.sync.ledger.database import WRITE_OPTION

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


class BatchError(RuntimeError):
    """A write that must be committed on its own was asked for inside `Store.batch`."""


class Store:
    """Base of the ledger's stores. Each public method is one short transaction.

    Writes go through ``_write()`` (BEGIN IMMEDIATE on SQLite, see database.py);
    reads through ``_read()``. Nothing is cached between calls, so several processes
    can share one database.

    ``batch()`` runs the calls a thread makes inside it as one transaction: the engine
    records a whole batch of outcomes with one commit instead of several per deal.
    Writes that must be committed before the caller goes on (an intent before its
    vendor call, a rotated token before its use) go through ``_committed_write()``,
    which refuses to run inside a batch.
    """

    def __init__(self, engine: Engine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._write_lock = _writer_lock(engine)
        self._clock = clock
        # Per thread: the per-target invoice workers batch independently.
        self._batches = threading.local()

    @contextmanager
    def batch(self, *, write: bool = True) -> Iterator[None]:
        """Every ledger call of this thread inside the block shares one transaction.

        ``write=True``: one write transaction (the SQLite write lock is held for the
        block), committed when the block ends and rolled back, whole, if it raises —
        all or nothing. ``write=False``: the reads share one connection and snapshot;
        writes inside it still commit on their own. Nested batches join the outer one.
        Keep vendor calls out of the block: nothing in it is committed before it ends.
        """
        if self._batch_connection() is not None:
            yield
            return
        if write:
            with (
                self._write_lock,
                self._writer.begin() as conn,
                self._batched(conn, write=True),
            ):
                yield
        else:
            with self._engine.connect() as conn, self._batched(conn, write=False):
                yield

    @contextmanager
    def _batched(self, conn: Connection, *, write: bool) -> Iterator[None]:
        self._batches.conn, self._batches.write = conn, write
        try:
            yield
        finally:
            self._batches.conn = None

    def _batch_connection(self, *, write: bool = False) -> Connection | None:
        conn: Connection | None = getattr(self._batches, "conn", None)
        if conn is None or (write and not self._batches.write):
            return None
        return conn

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
        batched = self._batch_connection(write=True)
        if batched is not None:
            yield batched
            return
        with self._write_lock, self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _committed_write(self, what: str) -> Iterator[Connection]:
        """A write transaction that is committed when the block ends, never batched."""
        if self._batch_connection() is not None:
            raise BatchError(f"{what} must be committed on its own, not inside a ledger batch")
        with self._write_lock, self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        batched = self._batch_connection()
        if batched is not None:
            yield batched
            return
        with self._engine.connect() as conn:
            yield conn


def insert_for(conn: Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with ON CONFLICT support for the connection's dialect.

    Both dialects spell ``on_conflict_do_nothing`` / ``on_conflict_do_update`` the
    same way, which is what makes duplicate-safe inserts race-free on both.
    """
    return dialect_insert(conn.dialect.name, table)


def dialect_insert(name: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """`insert_for` by dialect name, for statements built once and cached per dialect.

    Why cache: building an upsert (``excluded`` aliases, CASE columns) and its cache
    key costs SQLAlchemy about a millisecond, several times what SQLite needs to run
    it; a statement built once with bind parameters is reused for every row.
    """
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
