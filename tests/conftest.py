"""Shared fixtures and the PostgreSQL accounting that .ci/run relies on.

Tests that need PostgreSQL are marked ``postgres`` and use ``postgres_url``. Locally
they skip when ``BILLSYNC_TEST_POSTGRES_URL`` is unset; with
``BILLSYNC_REQUIRE_POSTGRES=1`` (set by .ci/run) a missing server is a failure instead.
When ``BILLSYNC_PG_REPORT`` names a file, the outcome counts of the postgres-marked
tests are written there as JSON so CI can refuse a run where none of them ran.

Browser tests (marked ``browser``, headless Debian chromium) are counted the same way:
they skip without /usr/bin/chromium unless ``BILLSYNC_REQUIRE_BROWSER=1``, and their
counts go to ``BILLSYNC_BROWSER_REPORT``.
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
_browser_outcomes = {"passed": 0, "failed": 0, "skipped": 0}


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


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # A report hook, not makereport: under pytest-xdist the controller receives every
    # worker's reports here (with their markers in ``keywords``) and writes the file.
    if not (report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
        return
    for marker, counts in (("postgres", _pg_outcomes), ("browser", _browser_outcomes)):
        if marker in report.keywords:
            counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller counts and reports
    for env, name, counts in (
        ("BILLSYNC_PG_REPORT", "postgres", _pg_outcomes),
        ("BILLSYNC_BROWSER_REPORT", "browser", _browser_outcomes),
    ):
        target = os.environ.get(env)
        if target:
            Path(target).write_text(json.dumps(counts))
        if counts["passed"] or counts["failed"] or counts["skipped"]:
            session.config.pluginmanager.get_plugin("terminalreporter").write_line(  # type: ignore[union-attr]
                f"{name}-marked tests: " + ", ".join(f"{n} {k}" for k, n in counts.items())
            )
