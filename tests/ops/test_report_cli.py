"""`billsync report aging|kpis` on the hand-built book: JSON exactly as the issue shows,
CSV, per-customer rows, formulas in --help, usage errors."""

from __future__ import annotations

import pytest

from billsync.sync.ledger import Ledger
from billsync.sync.ops.kpis import kpis
from tests.ops.ar_fixture import D, build_book
from tests.ops.conftest import Cli


@pytest.fixture
def book_cli(sqlite_cli: Cli, sqlite_ledger: Ledger) -> Cli:
    build_book(sqlite_ledger)
    return sqlite_cli


def test_aging_json_shape(book_cli: Cli) -> None:
    report = book_cli.json("report", "aging", "--as-of", "2026-03-31", "--json")
    assert set(report) == {"as_of", "currencies", "connections", "without_due_date"}
    assert report["as_of"] == "2026-03-31"
    for figures in report["currencies"].values():
        assert list(figures) == ["current", "1-30", "31-60", "61-90", "90+", "total"]
        assert all(isinstance(value, str) for value in figures.values())
    assert report["currencies"]["USD"]["total"] == "2820.00"  # see test_ar_reports
    only = book_cli.json("report", "aging", "--as-of", "2026-03-31", "--currency", "jpy",
                         "--json")  # fmt: skip
    assert only["currencies"] == {"JPY": {"current": "0", "1-30": "130000", "31-60": "0",
                                          "61-90": "0", "90+": "0", "total": "130000"}}  # fmt: skip


def test_aging_csv_by_customer(book_cli: Cli) -> None:
    result = book_cli("report", "aging", "--as-of", "2026-03-31", "--by", "customer", "--csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "currency,customer,current,1-30,31-60,61-90,90+,total"
    # EUR: E1 1000.00 (its refund reopens nothing); E2 (Omega) has nothing due, its
    # dispute withdrew the funds without reopening the balance (see test_ar_reports).
    assert "EUR,Zeta,0.00,0.00,1000.00,0.00,0.00,1000.00" in lines
    assert "EUR,(all customers),0.00,0.00,1000.00,0.00,0.00,1000.00" in lines
    assert not any(line.startswith("EUR,Omega,") for line in lines)
    assert "USD,Acme,600.00,0.00,1750.00,0.00,0.00,2350.00" in lines
    assert "USD,(all customers),720.00,0.00,1750.00,0.00,350.00,2820.00" in lines
    assert "JPY,Nakamura,0,130000,0,0,0,130000" in lines
    by_customer = book_cli.json("report", "aging", "--as-of", "2026-03-31", "--by", "customer",
                                "--json")  # fmt: skip
    acme = next(row for row in by_customer["customers"] if row["customer"] == "Acme")
    assert acme == {"customer": "Acme", "account_id": "001-acme", "currency": "USD",
                    "current": "600.00", "1-30": "0.00", "31-60": "1750.00", "61-90": "0.00",
                    "90+": "0.00", "total": "2350.00"}  # fmt: skip


def test_aging_table(book_cli: Cli) -> None:
    result = book_cli("report", "aging", "--as-of", "2026-03-31")
    assert result.exit_code == 0
    assert "2820.00" in result.stdout and "130000" in result.stdout
    assert "1 open invoice(s) have no recorded due date" in result.stdout


def test_kpis_json_and_csv(book_cli: Cli, sqlite_ledger: Ledger) -> None:
    report = book_cli.json("report", "kpis", "--as-of", "2026-03-31", "--json")
    assert report == kpis(sqlite_ledger, D).as_json()  # the default window: 90 days
    assert report["currencies"]["USD"]["dso_days"] == "56.2"  # see test_ar_reports
    result = book_cli("report", "kpis", "--as-of", "2026-03-31", "--days", "90", "--csv")
    lines = result.stdout.splitlines()
    assert lines[0] == "metric,currency,value"
    for expected in ("dso_days,USD,56.2", "cei_percent,EUR,37.5", "ar,JPY,130000",
                     "write_offs_amount,USD,4000.00", "billing_accuracy_percent,,77.8",
                     "average_days_to_pay,,24.0", "dso_days,EUR,75.0",
                     "disputed_amount,EUR,400.00", "open_disputes,,1",
                     "oldest_dispute_age_days,,44"):  # fmt: skip
        assert expected in lines, expected
    table = book_cli("report", "kpis", "--as-of", "2026-03-31")
    assert table.exit_code == 0 and "dso_days" in table.stdout


def test_kpis_help_documents_every_formula(book_cli: Cli) -> None:
    text = " ".join(book_cli("report", "kpis", "--help").stdout.split())
    for formula in ("DSO = AR(D) / credit sales in the window x days",
                    "CEI = (AR(S) + credit sales - AR(D)) / (AR(S) + credit sales - current AR(D))",
                    "Billing accuracy =", "Average days to pay", "Open disputes",
                    "Write-offs"):  # fmt: skip
        assert formula in text, formula


@pytest.mark.parametrize(
    "args",
    [
        ["report", "aging", "--as-of", "31/03/2026"],
        ["report", "aging", "--currency", "XYZ"],
        ["report", "aging", "--json", "--csv"],
        ["report", "aging", "--by", "region"],
        ["report", "kpis", "--days", "0"],
    ],
)
def test_usage_errors_exit_2(sqlite_cli: Cli, args: list[str]) -> None:
    result = sqlite_cli(*args)
    assert result.exit_code == 2, result.output
