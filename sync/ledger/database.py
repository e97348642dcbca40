"""Engine factory: one place that knows how to open the ledger on each backend."""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

DEFAULT_URL = "sqlite:///./billsync.db"

# Execution option that marks a transaction as a writer. On SQLite such transactions
# start with BEGIN IMMEDIATE: taking the write lock up front means a read-then-write
# transaction waits on busy_timeout instead of failing with "database is locked"
# when another writer got in between its read and its write.
WRITE_OPTION = "billsync_write"

SQLITE_BUSY_TIMEOUT_MS = 10_000


class LedgerConfigError(ValueError):
    """The ledger URL names a backend billsync does not support."""


def _parse(url: str | URL) -> URL:
    # SQLAlchemy's own parse error quotes the whole string, password included.
    try:
        return make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        raise LedgerConfigError(
            "ledger.url is not a database URL: use sqlite:///path or "
            "postgresql://user@host/db (the password from a file or PGSERVICEFILE)"
        ) from None


def normalize_url(url: str | URL) -> URL:
    """Pick the drivers billsync is tested with: psycopg 3 for PostgreSQL.

    ``postgres://`` (Heroku-style) and bare ``postgresql://`` would otherwise select
    psycopg2, which is not a dependency.
    """
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise LedgerConfigError(
        f"unsupported ledger database {describe_url(parsed)!r}: "
        "use sqlite:///path or postgresql://…"
    )


def describe_url(url: str | URL) -> str:
    """The URL as it may appear in logs and messages: the password masked, whether it is
    in the user part or a libpq ``?password=`` parameter."""
    try:
        parsed = _parse(url)
    except LedgerConfigError:
        return "(not a database URL)"
    masked = {k: ("***" if k.lower() == "password" else v) for k, v in parsed.query.items()}
    shown = parsed.set(query=masked).render_as_string(hide_password=True)
    return shown.replace("password=%2A%2A%2A", "password=***")


def ledger_unreachable(url: str | URL, exc: BaseException) -> str | None:
    """A sentence for a ledger that cannot be opened (naming the host and what to check),
    or None when ``exc`` is not that."""
    if not isinstance(exc, OperationalError | LedgerConfigError):
        return None
    if isinstance(exc, LedgerConfigError):
        return str(exc)
    parsed = _parse(url)
    text = str(getattr(exc, "orig", exc))
    if parsed.get_backend_name() == "sqlite":
        if "unable to open" not in text:
            return None
        return (
            f"cannot open the ledger {describe_url(parsed)}: check that the directory "
            "exists and is writable by this user"
        )
    where = f"{parsed.host or 'localhost (or the PGSERVICEFILE entry)'}:{parsed.port or 5432}"
    return (
        f"cannot reach the ledger database at {where} (database "
        f"{parsed.database or '-'!s}): {text.strip().splitlines()[0] if text.strip() else '-'}; "
        "check that PostgreSQL is running and reachable from here, and the user, "
        "password and database in ledger.url"
    )


def _json_default(value: object) -> str:
    # JSON has no exact decimal in Python's encoder, so money goes in as a string;
    # never via float.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"), sort_keys=True)


# Fractional JSON numbers (e.g. amounts in a vendor payload) come back as Decimal,
# so reading a stored payload can never introduce a float into a money path.
json_loads = functools.partial(json.loads, parse_float=Decimal)


def create_ledger_engine(url: str | URL = DEFAULT_URL, *, echo: bool = False) -> Engine:
    """Create an Engine for the ledger at ``url`` with the per-backend settings."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo=echo)
    return sa.create_engine(
        parsed,
        echo=echo,
        pool_pre_ping=True,  # `serve` keeps connections for days; survive server restarts
        json_serializer=json_dumps,
        json_deserializer=json_loads,
    )


def _sqlite_engine(url: URL, *, echo: bool) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, echo=echo, json_serializer=json_dumps, json_deserializer=json_loads
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it issues a deferred
        # BEGIN lazily and not before DDL); _on_begin below issues our own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # The busy timeout first, so every statement below waits for a lock too.
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            # WAL: readers never block the writer and vice versa (webhook receiver
            # and run cycle share the file). NORMAL is durable across application
            # crashes in WAL mode; only an OS crash can lose the last transactions.
            _enter_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _enter_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent: once one connection did, the file stays so).

    Switching needs an exclusive lock, and SQLite may answer "database is locked" at
    once rather than wait (e.g. replicas opening a fresh file together while one of
    them migrates). Then: if the file is already in WAL there is nothing to do; if
    not, try again shortly, within the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            try:
                mode = cursor.execute("PRAGMA journal_mode").fetchone()
            except sqlite3.OperationalError:
                mode = None
            if mode and str(mode[0]).lower() == "wal":
                return
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
