"""Schema migrations, driven from code: no alembic.ini is needed at runtime.

The scripts live inside the package (``sync/ledger/migrations``), so an installed
wheel can migrate its own database: ``billsync`` calls ``upgrade_to_head`` on start
or refuses to run when ``is_current`` is False.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine

from billsync.sync.ledger.database import WRITE_OPTION, create_ledger_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An in-memory Alembic config; ``connection`` is handed to env.py."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_to_head(engine_or_url: Engine | URL | str) -> None:
    """Apply every pending migration in one transaction (DDL is transactional on
    both SQLite and PostgreSQL, so a failed upgrade leaves the old schema)."""
    if isinstance(engine_or_url, Engine):
        _upgrade(engine_or_url)
        return
    engine = create_ledger_engine(engine_or_url)
    try:
        _upgrade(engine)
    finally:
        engine.dispose()


# Any constant shared by every billsync: the advisory lock that serialises migrations.
_MIGRATION_LOCK = 1651076204


def _upgrade(engine: Engine) -> None:
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together each run the migrations; without a lock two
            # CREATE TYPE/TABLE race into a UniqueViolation on the catalogue. The
            # second waits here, then finds the schema at head and does nothing.
            # (SQLite needs nothing: BEGIN IMMEDIATE already admits one writer.)
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        command.upgrade(alembic_config(conn), "head")


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty (never migrated) one."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # only possible if the package lost its migration scripts
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def is_current(engine: Engine) -> bool:
    """True when the schema is exactly at head (not behind, not from a newer billsync)."""
    return current_revision(engine) == head_revision()
