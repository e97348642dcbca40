"""Two QuickBooks companies and two Stripe accounts in one ledger: the aging report
has per-connection totals, failures filter by connection, `status` lists each
connection with its own credentials, and advice reaches a connection's error table
through its kind (tests/ops/companies_fixture.py describes the ledger)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from billsync.connectors.quickbooks import errors as qbo
from billsync.sync.ledger import Ledger
from billsync.sync.ops.aging import aging
from billsync.sync.ops.connections import Connections, ConnectionView, from_specs, installed
from tests.ops.companies_fixture import DEALS, REALMS, TARGETS, seed_companies, write_config
from tests.ops.conftest import Cli, Clock

AS_OF = "2026-03-31"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))  # status measures token ages against the real clock


@pytest.fixture
def companies(sqlite_cli: Cli, sqlite_ledger: Ledger, tmp_path: Path) -> tuple[Cli, str]:
    seed_companies(sqlite_ledger, datetime.now(UTC))
    return sqlite_cli, str(write_config(tmp_path))


def test_aging_totals_each_connection_per_currency(companies: tuple[Cli, str]) -> None:
    cli, config = companies
    report = cli.json("report", "aging", "--as-of", AS_OF, "--json", "--config", config)
    assert report["currencies"]["USD"]["total"] == "150.00"  # qbo_us and stripe_us together
    assert {name: {c: f["total"] for c, f in by.items()}
            for name, by in report["connections"].items()} == {
        "qbo_uk": {"GBP": "200.00"}, "qbo_us": {"USD": "100.00"},
        "stripe_eu": {"EUR": "70.00"}, "stripe_us": {"USD": "50.00"},
    }  # fmt: skip
    assert report["connections"]["stripe_us"]["USD"]["31-60"] == "50.00"
    assert report["connections"]["qbo_uk"]["GBP"]["1-30"] == "200.00"


def test_aging_csv_has_a_subtotal_row_per_connection(companies: tuple[Cli, str]) -> None:
    cli, config = companies
    result = cli("report", "aging", "--as-of", AS_OF, "--csv", "--config", config)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "currency,customer,current,1-30,31-60,61-90,90+,total"
    usd = [line for line in lines if line.startswith("USD,")]
    assert usd == [
        "USD,(connection qbo_us),100.00,0.00,0.00,0.00,0.00,100.00",
        "USD,(connection stripe_us),0.00,0.00,50.00,0.00,0.00,50.00",
        "USD,(all customers),100.00,0.00,50.00,0.00,0.00,150.00",
    ]


def test_aging_of_one_connection(companies: tuple[Cli, str], sqlite_ledger: Ledger) -> None:
    cli, config = companies
    only = cli.json("report", "aging", "--as-of", AS_OF, "--connection", "stripe_us", "--json",
                    "--config", config)  # fmt: skip
    assert list(only["connections"]) == ["stripe_us"]
    assert only["currencies"]["USD"]["total"] == "50.00"
    day = datetime(2026, 3, 31, tzinfo=UTC).date()
    assert aging(sqlite_ledger, day, connection="qbo_uk").as_json()["currencies"] == {
        "GBP": aging(sqlite_ledger, day).as_json()["connections"]["qbo_uk"]["GBP"]
    }


def test_failures_list_filters_by_connection(companies: tuple[Cli, str]) -> None:
    cli, config = companies
    every = cli.json("failures", "list", "--status", "all", "--json", "--config", config)
    assert sorted(row["connection"] for row in every) == ["qbo_uk", "qbo_us", "stripe_eu"]
    for connection, deal in DEALS.items():
        rows = cli.json("failures", "list", "--status", "all", "--connection", connection,
                        "--json", "--config", config)  # fmt: skip
        assert [(row["connection"], row["deal_id"]) for row in rows] == [(connection, deal)]
    # The option's former name still works.
    old = cli.json("failures", "list", "--target", "qbo_uk", "--json", "--config", config)
    assert [row["deal_id"] for row in old] == [DEALS["qbo_uk"]]


def test_advice_reads_the_error_table_of_the_connections_kind(
    companies: tuple[Cli, str], sqlite_ledger: Ledger
) -> None:
    cli, config = companies
    [row] = cli.json("failures", "list", "--connection", "qbo_uk", "--json", "--config", config)
    shown = cli.json("failures", "show", str(row["id"]), "--json", "--config", config)
    sentence = shown["advice"]["sentence"]
    assert sentence.startswith(
        f"Creating the QuickBooks (qbo_uk) invoice for deal {DEALS['qbo_uk']}"
    ), sentence
    assert "QuickBooks item 'SKU-9' is inactive or deleted" in sentence  # the kind's hint
    assert qbo.FAULT_CODES[610].fix in sentence  # the kind's table
    assert "(QuickBooks 610" in sentence  # the vendor's code, under the connector's label


def test_status_lists_each_connection_with_its_own_credentials(
    companies: tuple[Cli, str],
) -> None:
    cli, config = companies
    status = cli.json("status", "--json", "--config", config, code=1)  # a dead failure
    listed = {row["name"]: row for row in status["connections"]}
    assert [name for name in listed if name in TARGETS] == list(TARGETS)
    assert listed["qbo_uk"] | {"cursors": []} == {
        "name": "qbo_uk", "kind": "quickbooks", "label": "QuickBooks (qbo_uk)",
        "enabled": True, "role": "target", "credential_health": "ok", "open_failures": 1,
        "cursors": [], "stopped_in_last_run": None,
    }  # fmt: skip
    assert listed["stripe_eu"]["kind"] == "stripe"
    assert listed["stripe_eu"]["credential_health"] == "not reported"
    assert listed["stripe_us"]["open_failures"] == 0
    for connection, realm in REALMS.items():
        [company] = status["credentials"][connection]
        assert company["realm_id"] == realm
        assert company["summary"].startswith(f"QuickBooks ({connection}) {realm}: ")
    text = cli("status", "--config", config).stdout
    assert "QuickBooks (qbo_uk) (target, enabled); credentials ok; open failures 1" in text
    assert "ACCESS-9130" not in text and "REFRESH-9130" not in text


def with_uk_company() -> Connections:
    """The installed connectors, each under its kind, and qbo_uk on account "2"."""
    specs = dict(installed().specs)
    uk = ConnectionView("qbo_uk", "quickbooks", "QuickBooks (qbo_uk)", True, "target", "2")
    return Connections({**from_specs(specs).views, "qbo_uk": uk}, specs, "salesforce")


@pytest.mark.parametrize(
    ("name", "kind", "label"),
    [
        ("qbo_uk", "quickbooks", "QuickBooks (qbo_uk)"),  # a named connection
        ("quickbooks", "quickbooks", "QuickBooks"),  # the plain section's
        ("xero", "xero", "xero"),  # no connector installed: named as stored
        ("billsync", "billsync", "billsync"),  # billsync's own failures
    ],
)
def test_a_stored_name_reaches_its_kind_and_label(name: str, kind: str, label: str) -> None:
    known = with_uk_company()
    assert (known.kind(name), known.label(name)) == (kind, label)


@pytest.mark.parametrize(
    ("account", "owner"),
    [("2", "qbo_uk"), ("3", "quickbooks"), ("", "quickbooks")],
)
def test_a_stored_credential_belongs_to_the_connection_of_its_account(
    account: str, owner: str
) -> None:
    assert with_uk_company().owner("quickbooks", account) == owner
