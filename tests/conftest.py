"""Shared fixtures and the PostgreSQL accounting that .ci/run relies on.

Tests that need PostgreSQL are marked ``postgres`` and use ``postgres_url``. Locally
they skip when ``BILLSYNC_TEST_POSTGRES_URL`` is unset; with
``BILLSYNC_REQUIRE_POSTGRES=1`` (set by .ci/run) a missing server is a failure instead.
When ``BILLSYNC_PG_REPORT`` names a file, the outcome counts of the postgres-marked
tests are written there as JSON so CI can refuse a run where none of them ran.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_URL_ENV = "BILLSYNC_TEST_POSTGRES_URL"
_pg_outcomes = {"passed": 0, "failed": 0, "skipped": 0}


def _admin_url() -> str | None:
    return os.environ.get(POSTGRES_URL_ENV) or None


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = _admin_url()
    if url is None:
        if os.environ.get("BILLSYNC_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{POSTGRES_URL_ENV} is not set but BILLSYNC_REQUIRE_POSTGRES=1")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_ENV} (CI sets it)")
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server for one test, dropped afterwards."""
    import sqlalchemy as sa

    name = f"billsync_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.engine.make_url(postgres_server_url).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if item.get_closest_marker("postgres") is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _pg_outcomes[report.outcome] = _pg_outcomes.get(report.outcome, 0) + 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("BILLSYNC_PG_REPORT")
    if target:
        Path(target).write_text(json.dumps(_pg_outcomes))
    if _pg_outcomes["passed"] or _pg_outcomes["failed"] or _pg_outcomes["skipped"]:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(  # type: ignore[union-attr]
            "postgres-marked tests: " + ", ".join(f"{n} {k}" for k, n in _pg_outcomes.items())
        )
