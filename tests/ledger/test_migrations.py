"""Migrations: from empty to head, and head is exactly what schema.py declares."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sync.ledger import current_revision, head_revision, is_current, upgrade_to_head
from sync.ledger.migrate import MIGRATIONS_DIR
from sync.ledger.schema import metadata

REPO = Path(__file__).resolve().parents[2]


def test_empty_database_is_not_current(engine):
    assert current_revision(engine) is None
    assert not is_current(engine)


def test_upgrade_from_empty_reaches_head(engine):
    upgrade_to_head(engine)
    assert current_revision(engine) == head_revision() == "0006"
    assert is_current(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert set(metadata.tables) <= tables


def test_upgrade_is_idempotent(engine):
    upgrade_to_head(engine)
    upgrade_to_head(engine)
    assert is_current(engine)


def test_upgrade_accepts_a_url(ledger_url, engine):
    upgrade_to_head(ledger_url)
    assert is_current(engine)


def test_migrated_schema_matches_metadata(engine):
    upgrade_to_head(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_constraints_are_named_by_convention(migrated):
    inspector = sa.inspect(migrated)
    uniques = {uc["name"] for uc in inspector.get_unique_constraints("work_items")}
    assert "uq_work_items_kind_key" in uniques
    checks = {ck["name"] for ck in inspector.get_check_constraints("inbox")}
    assert "ck_inbox_status" in checks


def test_migration_scripts_ship_in_the_package():
    # setuptools' find_packages only ships directories that have an __init__.py;
    # the .mako template rides along through package-data in pyproject.toml.
    for directory in (MIGRATIONS_DIR, MIGRATIONS_DIR / "versions"):
        assert (directory / "__init__.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert '"*.mako"' in (REPO / "pyproject.toml").read_text()


def test_concurrent_upgrades_from_empty_both_succeed(ledger_url):
    """Replicas starting together each migrate; the second waits for the first and then
    finds the schema at head (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE)."""
    from sync.ledger import create_ledger_engine
    from tests.ledger.conftest import run_concurrently

    engines = [create_ledger_engine(ledger_url) for _ in range(3)]
    try:
        run_concurrently(lambda i: upgrade_to_head(engines[i]), 3)
        assert all(is_current(engine) for engine in engines)
    finally:
        for engine in engines:
            engine.dispose()
