"""Engine factory: URLs, SQLite pragmas, password hygiene."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from billsync.sync.ledger import (
    LedgerConfigError,
    create_ledger_engine,
    describe_url,
    normalize_url,
)


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:pw@db.example/billsync",
        "postgresql://u:pw@db.example/billsync",
        "postgresql+psycopg://u:pw@db.example/billsync",
    ],
)
def test_postgres_urls_use_psycopg3(url):
    assert normalize_url(url).drivername == "postgresql+psycopg"


def test_sqlite_url_is_kept():
    assert normalize_url("sqlite:///./billsync.db").drivername == "sqlite"


def test_unsupported_backend_message_hides_the_password():
    with pytest.raises(LedgerConfigError) as caught:
        normalize_url("mysql://admin:hunter2@db.example/billsync")
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)


def test_describe_url_masks_password():
    assert "s3cret" not in describe_url("postgresql://u:s3cret@h/db")


def test_sqlite_creates_parent_directories_and_sets_pragmas(tmp_path):
    path = tmp_path / "deep" / "er" / "ledger.db"
    engine = create_ledger_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
        assert path.parent.is_dir()
        assert pragma == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 10000,
            "synchronous": 1,  # NORMAL
        }
    finally:
        engine.dispose()


def test_sqlite_every_pooled_connection_gets_the_pragmas(tmp_path):
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    finally:
        engine.dispose()


def test_sqlite_transactions_are_real(tmp_path):
    # The sqlite3 module's own transaction handling is switched off; ours must
    # still roll back.
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with pytest.raises(RuntimeError), engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            raise RuntimeError("abort")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
    finally:
        engine.dispose()
