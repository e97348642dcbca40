"""`billsync status` on a ledger with runs, queue, cursors, inbox, discrepancies and a
QuickBooks connection: every section present, the figures right, no token printed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from billsync.connectors.quickbooks.tokens import TokenSet
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.ops_reads import quota_cursor, quota_cursor_value
from tests.ops.conftest import Cli, Clock

ACCESS = "eyJhbGciOiJIUzI1NiJ9.ACCESS-TOKEN-DISTINCTIVE-7731"
REFRESH = "AB11-REFRESH-TOKEN-DISTINCTIVE-4419"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))  # status measures ages against the real clock


def fill(ledger: Ledger) -> None:
    now = datetime.now(UTC)
    first = ledger.start_run(now - timedelta(hours=2))
    ledger.finish_run(first, "clean", {"deals_seen": 10, "invoices_created": 10,
                                       "duration_s": 4.2}, now - timedelta(hours=2))  # fmt: skip
    second = ledger.start_run(now - timedelta(hours=1))
    summary = {"deals_seen": 3, "failures": 1, "needs_attention": 1, "duration_s": 1.5,
               "stopped": {"stripe": "Stripe refused the API key"}}  # fmt: skip
    ledger.finish_run(second, "failures", summary, now - timedelta(hours=1))
    ledger.enqueue("invoice", "006A", {"deal_id": "006A", "target": "quickbooks"}, now)
    item = ledger.enqueue("invoice", "006B", {"deal_id": "006B", "target": "stripe"}, now)
    ledger.fail_work(item.id, "invalid_data", "610", "inactive item", now, True)
    ledger.set_cursor("salesforce.deals", "2026-11-23T10:00:00.000Z|006B")
    ledger.set_cursor("stripe.events", "evt_123")
    ledger.set_cursor(quota_cursor("salesforce"), quota_cursor_value(14200, 15000, "10", True))
    ledger.store_inbox_event("stripe", "evt_1", b"{}", {"event_type": "invoice.paid"})
    ledger.record_discrepancy("invoice_total_mismatch", "006C", "quickbooks", "1", "2")
    ledger.record_discrepancy("writeback_missing", "006D", "quickbooks", None, None)
    tokens = TokenSet(
        refresh_token=REFRESH,
        access_token=ACCESS,
        access_expires_at=now + timedelta(minutes=40),
        refresh_expires_at=now + timedelta(days=20),
        refresh_issued_at=now - timedelta(days=80),
        connected_at=now - timedelta(days=400),
    )
    assert ledger.save_credentials("quickbooks:9130", tokens.to_data(), None)


def test_status_json_has_every_section(cli: Cli, ledger: Ledger) -> None:
    fill(ledger)
    result = cli("status", "--json")
    assert result.exit_code == 1  # warnings: a dead item, an expiring token, the quota floor
    assert ACCESS not in result.output and REFRESH not in result.output
    status = json.loads(result.stdout)
    assert [run["outcome"] for run in status["runs"]] == ["failures", "clean"]
    assert status["runs"][0]["counts"] == {"deals_seen": 3, "failures": 1, "needs_attention": 1}
    assert status["runs"][0]["stopped"] == {"stripe": "Stripe refused the API key"}
    assert status["run_lease"] is None
    assert status["queue"]["by_status"] == {
        "pending": 1, "leased": 0, "done": 0, "dead": 1, "resolved": 0}  # fmt: skip
    assert status["queue"]["by_kind"] == {"invoice": {"pending": 1, "dead": 1}}
    assert status["queue"]["open_failures_by_class"] == {"invalid_data": 1}
    assert [c["name"] for c in status["cursors"]] == ["salesforce.deals", "stripe.events"]
    assert all(c["age_s"] is not None and c["age_s"] < 600 for c in status["cursors"])
    assert status["inbox"]["by_status"]["pending"] == 1 and status["inbox"]["lag_s"] >= 0
    assert status["discrepancies"] == {
        "open": 2, "by_kind": {"invoice_total_mismatch": 1, "writeback_missing": 1}}  # fmt: skip
    [company] = status["credentials"]["quickbooks"]
    assert company["realm_id"] == "9130" and company["access_token_valid"] is True
    assert company["refresh_token_age_days"] == 80
    assert company["reconnect_by"] is not None and company["access_token_expires_at"]
    assert any("refresh token expires" in w for w in company["warnings"])
    assert company["summary"].startswith("QuickBooks 9130: access token valid yes (until ")
    assert "refresh token 80 days old" in company["summary"]
    quota = status["source_quota"]
    assert quota == quota | {"system": "salesforce", "label": "Salesforce", "known": True,
                             "used": 14200, "max": 15000, "remaining": 800,
                             "floor_percent": "10", "stopped_by_floor": True}  # fmt: skip
    warnings = status["warnings"]
    assert any("1 failed item(s) wait for an operator" in w for w in warnings)
    assert any(w.startswith("QuickBooks 9130: the refresh token expires") for w in warnings)
    assert "the last run stopped calling Salesforce at the quota floor" in warnings


def test_status_text_never_prints_a_token(sqlite_cli: Cli, sqlite_ledger: Ledger) -> None:
    fill(sqlite_ledger)
    result = sqlite_cli("status")
    assert result.exit_code == 1
    assert ACCESS not in result.output and REFRESH not in result.output
    text = result.stdout
    for heading in ("Last runs:", "Queue:", "Cursors:", "Inbox:", "Open discrepancies: 2",
                    "QuickBooks 9130: access token valid yes", "Salesforce API: 14200 of 15000",
                    "Warnings:"):  # fmt: skip
        assert heading in text, heading


def test_a_quiet_ledger_is_fine_and_says_what_it_does_not_know(sqlite_cli: Cli) -> None:
    status = sqlite_cli.json("status", "--json")
    assert status["warnings"] == [] and status["runs"] == []
    assert status["credentials"] == {"quickbooks": []}
    assert status["source_quota"]["known"] is False
    assert "unknown until a run records it" in status["source_quota"]["note"]
    text = sqlite_cli("status").stdout
    assert "QuickBooks: no credentials stored in this ledger" in text
    assert "Salesforce API allocation: unknown until a run records it" in text


def test_an_unfinished_run_without_a_lease_is_a_crash(
    sqlite_cli: Cli, sqlite_ledger: Ledger
) -> None:
    run_id = sqlite_ledger.start_run(datetime.now(UTC) - timedelta(minutes=5))
    status = sqlite_cli.json("status", "--json", code=1)
    assert status["runs"][0]["outcome"] is None
    assert status["warnings"] == [f"run {run_id} never finished (crashed or was killed)"]
    sqlite_ledger.acquire_lease("run", "host:123", timedelta(minutes=5))
    running = sqlite_cli.json("status", "--json")
    assert running["run_lease"]["holder"] == "host:123" and running["warnings"] == []


def test_status_json_credentials_and_quota_on_sqlite(
    sqlite_cli: Cli, sqlite_ledger: Ledger
) -> None:
    fill(sqlite_ledger)
    status = sqlite_cli.json("status", "--json", code=1)
    assert list(status["credentials"]) == ["quickbooks"]  # the connectors that report any
    [company] = status["credentials"]["quickbooks"]
    assert company["realm_id"] == "9130" and company["readable"] is True
    assert company["summary"].startswith("QuickBooks 9130: access token valid yes (until ")
    assert "refresh token 80 days old" in company["summary"]
    assert status["source_quota"] == status["source_quota"] | {
        "system": "salesforce", "label": "Salesforce", "known": True, "remaining": 800}  # fmt: skip
    assert "the last run stopped calling Salesforce at the quota floor" in status["warnings"]


def test_credentials_are_reported_by_the_connector_that_keeps_them(
    sqlite_ledger: Ledger,
) -> None:
    """Status names no vendor: a plug-in's `credential_health` reads its own rows."""
    from billsync.core.plugins import (
        ConnectorParts,
        ConnectorSpec,
        CredentialHealth,
        CredentialReport,
        StoredCredential,
    )
    from billsync.core.settings import ConnectorSection
    from billsync.sync.ops.status import build_status

    seen: list[str] = []

    def report(stored: StoredCredential, now: datetime) -> CredentialReport:
        seen.append(stored.name)
        tenant = stored.name.removeprefix("xero:")
        expires = str(stored.data["expires"])
        return CredentialReport(tenant, {"tenant": tenant, "expires": expires},
                                f"expires {expires}", ("reconnect soon",))  # fmt: skip

    xero = ConnectorSpec("xero", "Xero", ConnectorSection, lambda s, c: ConnectorParts(),
                         credential_health=CredentialHealth("xero:", report))  # fmt: skip
    plain = ConnectorSpec("plain", "Plain", ConnectorSection, lambda s, c: ConnectorParts())
    assert sqlite_ledger.save_credentials("xero:t1", {"expires": "2026-05-01", "token": "x"}, None)
    assert sqlite_ledger.save_credentials("quickbooks:9", {"refresh_token": "y"}, None)
    status = build_status(sqlite_ledger, datetime.now(UTC), source="plain",
                          specs={"xero": xero, "plain": plain})  # fmt: skip
    assert seen == ["xero:t1"]  # its own rows only
    document = status.as_json()
    assert document["credentials"] == {"xero": [{
        "tenant": "t1", "expires": "2026-05-01", "summary": "Xero t1: expires 2026-05-01",
        "warnings": ["reconnect soon"]}]}  # fmt: skip
    assert "Xero t1: reconnect soon" in status.warnings
    assert document["source_quota"]["system"] == "plain"
    assert document["source_quota"]["label"] == "Plain"
