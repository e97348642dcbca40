"""The ops API and /metrics of a server configured with two QuickBooks companies and
two Stripe accounts (tests/ops/companies_fixture.py): failures filter by connection,
the aging report and status show each one, metrics series carry the connection."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from billsync.config.loader import load_settings
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from billsync.sync.ops.connections import from_settings
from billsync.sync.server.app import ServerParts, create_app
from billsync.sync.server.metrics import Metrics
from tests.ops.companies_fixture import DEALS, TARGETS, seed_companies, write_config
from tests.ops.conftest import Clock
from tests.server.live import serving
from tests.server.test_ops_api import AUTH, NOW, TOKEN, sign_in


@dataclass
class Served:
    url: str

    def get(self, path: str, **params: str) -> Any:
        answer = requests.get(f"{self.url}{path}", headers=AUTH, params=params, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json() if path.startswith("/api") else answer.text


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    db = create_ledger_engine(f"sqlite:///{tmp_path / 'billsync.db'}")
    upgrade_to_head(db)
    clock = Clock(NOW)
    ledger = Ledger(db, clock=clock)
    seed_companies(ledger, NOW)
    settings = load_settings(write_config(tmp_path), environ={})
    app = create_app(
        ServerParts(
            ledger=ledger, verifiers={}, metrics=Metrics(ledger, now=clock), max_body_bytes=1 << 20,
            ops_token=SecretStr(TOKEN), clock=clock, ops_connections=from_settings(settings),
        )
    )  # fmt: skip
    try:
        with serving(app) as base:
            yield Served(base)
    finally:
        db.dispose()


def test_api_failures_filter_by_connection(served: Served) -> None:
    for connection, deal in DEALS.items():
        rows = served.get("/api/failures", connection=connection)
        assert [(row["connection"], row["deal_id"]) for row in rows] == [(connection, deal)]
    assert served.get("/api/failures", connection="stripe_us") == []
    assert [row["deal_id"] for row in served.get("/api/failures", target="qbo_uk")] == [
        DEALS["qbo_uk"]
    ]  # the parameter's former name


def test_api_aging_and_status_show_each_connection(served: Served) -> None:
    aging = served.get("/api/reports/aging", as_of="2026-03-31")
    assert sorted(aging["connections"]) == sorted(TARGETS)
    assert aging["connections"]["qbo_us"]["USD"]["total"] == "100.00"
    assert aging["currencies"]["USD"]["total"] == "150.00"
    one = served.get("/api/reports/aging", as_of="2026-03-31", connection="stripe_eu")
    assert list(one["connections"]) == ["stripe_eu"] and list(one["currencies"]) == ["EUR"]
    status = served.get("/api/status")
    listed = {row["name"]: row for row in status["connections"]}
    assert set(TARGETS) <= set(listed)
    assert {name: listed[name]["label"] for name in TARGETS} == {
        "qbo_us": "QuickBooks (qbo_us)", "qbo_uk": "QuickBooks (qbo_uk)",
        "stripe_us": "Stripe (stripe_us)", "stripe_eu": "Stripe (stripe_eu)",
    }  # fmt: skip
    assert sorted(status["credentials"]) == ["qbo_uk", "qbo_us", "quickbooks"]
    assert status["credentials"]["quickbooks"] == []  # the plain section stores none


def test_metrics_carry_the_connection(served: Served) -> None:
    body = served.get("/metrics")
    for connection in TARGETS:
        assert f'billsync_invoices_created_total{{target="{connection}"}} 1.0' in body
    assert 'billsync_connection_open_failures{class="invalid_data",connection="qbo_uk"} 1.0' in body
    assert 'billsync_connection_open_failures{class="transient",connection="stripe_eu"} 1.0' in body
    assert 'connection="stripe_us"' not in body  # no open failure: no series invented


def test_pages_filter_and_show_each_connection(served: Served) -> None:
    browser = sign_in(served)  # type: ignore[arg-type]  # it reads the URL only

    def page(path: str) -> str:
        answer = browser.get(f"{served.url}{path}", timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.text

    failures = page("/ops/failures?status=all&connection=qbo_uk")
    assert DEALS["qbo_uk"] in failures
    assert DEALS["stripe_eu"] not in failures and DEALS["qbo_us"] not in failures
    assert '<option value="qbo_uk" selected>QuickBooks (qbo_uk)</option>' in failures
    aging = page("/ops/reports/aging?as_of=2026-03-31")
    assert 'id="aging-connections"' in aging
    assert all(
        f'<th scope="row">{label}</th>' in aging
        for label in (
            "QuickBooks (qbo_us)",
            "QuickBooks (qbo_uk)",
            "Stripe (stripe_us)",
            "Stripe (stripe_eu)",
        )
    )
    runs = page("/ops/runs")
    assert all(f'<th scope="row">{name}</th>' in runs for name in TARGETS)


def test_metrics_report_each_connections_credential_warnings(tmp_path: Path) -> None:
    """billsync_credential_warnings{connection}: each QuickBooks company's stored token
    as `billsync status` reports it; one whose refresh token runs out soon warns."""
    from datetime import timedelta

    from billsync.connectors.quickbooks.tokens import TokenSet
    from billsync.sync.ops.status import CredentialWarnings
    from tests.ops.companies_fixture import REALMS

    db = create_ledger_engine(f"sqlite:///{tmp_path / 'billsync.db'}")
    upgrade_to_head(db)
    ledger = Ledger(db, clock=Clock(NOW))
    seed_companies(ledger, NOW)
    connections = from_settings(load_settings(write_config(tmp_path), environ={}))
    metrics = Metrics(ledger, now=Clock(NOW), credentials=CredentialWarnings(ledger, connections))
    body = metrics.render()[0].decode()
    assert 'billsync_credential_warnings{connection="qbo_us"} 0.0' in body
    assert 'billsync_credential_warnings{connection="qbo_uk"} 0.0' in body

    realm = REALMS["qbo_uk"]
    stored = ledger.load_credentials(f"quickbooks:{realm}")
    assert stored is not None
    expiring = TokenSet(
        refresh_token="REFRESH-SOON", access_token="ACCESS-SOON",
        access_expires_at=NOW + timedelta(minutes=40),
        refresh_expires_at=NOW + timedelta(days=5),
        refresh_issued_at=NOW - timedelta(days=95), connected_at=NOW - timedelta(days=400),
    )  # fmt: skip
    assert ledger.save_credentials(f"quickbooks:{realm}", expiring.to_data(), stored[1])
    body = metrics.render()[0].decode()
    assert 'billsync_credential_warnings{connection="qbo_uk"} 1.0' in body
    assert 'billsync_credential_warnings{connection="qbo_us"} 0.0' in body
    assert "REFRESH-SOON" not in body
    db.dispose()
