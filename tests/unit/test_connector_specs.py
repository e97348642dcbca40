"""What the built-in connectors declare on their specs so the core names no vendor:
error tables and hints (ops advice), credential health (status), the source's cursor
at a date (first run, --since) and the `billsync auth` command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billsync.core.plugins import StoredCredential, installed_specs

NOW = datetime(2026, 3, 31, 12, tzinfo=UTC)


def test_the_built_ins_declare_what_the_core_reads() -> None:
    specs = installed_specs()[0]
    qbo, sf, stripe = specs["quickbooks"], specs["salesforce"], specs["stripe"]
    assert [spec.label for spec in (qbo, sf, stripe)] == ["QuickBooks", "Salesforce", "Stripe"]
    for spec in (qbo, sf, stripe):
        assert spec.error_rules is not None and list(spec.error_rules()), spec.name
        assert spec.error_hints, spec.name
        assert len({(hint.code, hint.says) for hint in spec.error_hints}) == len(spec.error_hints)
    assert qbo.credential_health is not None and qbo.credential_health.prefix == "quickbooks:"
    assert sf.credential_health is None and stripe.credential_health is None
    assert sf.cursor_at is not None and qbo.cursor_at is None and stripe.cursor_at is None
    assert qbo.cli is not None and sf.cli is None and stripe.cli is None


def test_the_hinted_quickbooks_codes_are_in_its_table() -> None:
    qbo = installed_specs()[0]["quickbooks"]
    assert qbo.error_rules is not None
    codes = {code for code, _rule in qbo.error_rules()}
    assert {hint.code for hint in qbo.error_hints} <= codes


def test_quickbooks_reports_a_company_without_reading_its_tokens_out() -> None:
    from billsync.connectors.quickbooks.tokens import TokenSet

    health = installed_specs()[0]["quickbooks"].credential_health
    assert health is not None
    tokens = TokenSet(
        refresh_token="AB11-SECRET-REFRESH",
        access_token="eyJ-SECRET-ACCESS",
        access_expires_at=NOW + timedelta(minutes=30),
        refresh_expires_at=NOW + timedelta(days=10),
        refresh_issued_at=NOW - timedelta(days=90),
        connected_at=NOW - timedelta(days=100),
    )
    report = health.report(StoredCredential("quickbooks:9130", tokens.to_data(), NOW), NOW)
    assert report.account == "9130"
    assert report.facts["realm_id"] == "9130" and report.facts["access_token_valid"] is True
    assert report.facts["refresh_token_age_days"] == 90
    assert report.summary == (
        "access token valid yes (until 2026-03-31T12:30:00+00:00); refresh token 90 days old, "
        "expires 2026-04-10T12:00:00+00:00; reconnect by 2030-12-21T12:00:00+00:00"
    )
    assert [w for w in report.warnings if "refresh token expires" in w]
    assert "SECRET" not in repr(report)

    broken = health.report(StoredCredential("quickbooks:77", {"nothing": 1}, NOW), NOW)
    assert broken.account == "77" and broken.facts == {"realm_id": "77", "readable": False}
    assert broken.warnings == ("stored tokens unreadable",)
