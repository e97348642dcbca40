"""`billsync report aging|kpis`: AR reports from the ledger, as a table, JSON or CSV.

Definitions live with the arithmetic (`sync/ops/aging.py`, `sync/ops/kpis.py`) and in
each command's ``--help``. Exit codes: 0 report printed; 2 usage or configuration
error (a bad date or currency, --json with --csv).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from billsync.sync.cli.status_cmd import open_ledger
from billsync.sync.ops.render import dumps


def parse_as_of(value: str | None) -> date:
    """An ISO date; default today in UTC."""
    if value is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"'{value}' is not an ISO date (YYYY-MM-DD)", param_hint="--as-of"
        ) from None


def parse_currency(value: str | None) -> str | None:
    from billsync.core import money

    if value is None:
        return None
    try:
        return money.normalise_currency(value)
    except money.UnknownCurrencyError as exc:
        raise typer.BadParameter(str(exc), param_hint="--currency") from None


def _one_format(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise typer.BadParameter("choose --json or --csv, not both", param_hint="--csv")


def aging_command(
    ctx: typer.Context,
    config: Path | None,
    as_of: str | None,
    currency: str | None,
    by: str | None,
    as_json: bool,
    as_csv: bool,
    connection: str | None = None,
) -> None:
    from billsync.sync.cli.options import settings_for
    from billsync.sync.ops.aging import BUCKETS, aging, connection_cell

    _one_format(as_json, as_csv)
    if by not in (None, "customer"):
        raise typer.BadParameter("the only grouping is 'customer'", param_hint="--by")
    day, code = parse_as_of(as_of), parse_currency(currency)
    settings = settings_for(ctx, config, logs_to_stderr=True)
    with open_ledger(settings) as ledger:
        report = aging(
            ledger, day, currency=code, connection=connection, by_customer=by == "customer"
        )
    if as_json:
        typer.echo(dumps(report.as_json()))
        return
    if as_csv:
        typer.echo(report.csv(), nl=False)
        return
    table = Table(title=f"AR aging as of {day.isoformat()} (open balances by days past due)")
    table.add_column("currency")
    if report.customers is not None:
        table.add_column("customer")
    else:
        table.add_column("connection")
    columns = (*BUCKETS, "total")
    for name in columns:
        table.add_column(name, justify="right")
    document = report.as_json()
    for currency_code, totals in document["currencies"].items():
        for row in document.get("customers", []):
            if row["currency"] == currency_code:
                table.add_row(currency_code, row["customer"], *[row[n] for n in columns])
        for name, figures in document["connections"].items():
            if currency_code in figures:
                shown = connection_cell(name) if report.customers is not None else name
                table.add_row(currency_code, shown, *[figures[currency_code][n] for n in columns])
        everyone = "(all customers)" if report.customers is not None else "(all connections)"
        table.add_row(currency_code, everyone, *[totals[name] for name in columns])
    console = Console(soft_wrap=True)
    console.print(table)
    if report.without_due_date:
        console.print(
            f"{report.without_due_date} open invoice(s) have no recorded due date and are "
            "aged from their issue date.",
            highlight=False,
        )
    if not document["currencies"]:
        console.print("No invoices issued by that date.", highlight=False)


def kpis_command(
    ctx: typer.Context,
    config: Path | None,
    as_of: str | None,
    days: int,
    currency: str | None,
    as_json: bool,
    as_csv: bool,
    connection: str | None = None,
) -> None:
    from billsync.sync.cli.options import settings_for
    from billsync.sync.ops.kpis import kpis

    _one_format(as_json, as_csv)
    day, code = parse_as_of(as_of), parse_currency(currency)
    settings = settings_for(ctx, config, logs_to_stderr=True)
    with open_ledger(settings) as ledger:
        report = kpis(ledger, day, days=days, currency=code, connection=connection)
    document = report.as_json()
    if as_json:
        typer.echo(dumps(document))
        return
    rows = kpi_rows(document)
    if as_csv:
        from billsync.sync.ops.render import csv_text

        typer.echo(csv_text(["metric", "currency", "value"], rows), nl=False)
        return
    window = document["window"]
    table = Table(title=f"AR KPIs, {window['from']} to {window['to']} ({days} days)")
    for column in ("metric", "currency", "value"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for metric, currency_code, value in rows:
        table.add_row(metric, currency_code, "-" if value is None else str(value))
    Console(soft_wrap=True).print(table)


def kpi_rows(document: dict[str, object]) -> list[tuple[str, str, object]]:
    """The KPI document flattened to (metric, currency, value) rows (CSV and table)."""
    rows: list[tuple[str, str, object]] = []
    currencies = document["currencies"]
    assert isinstance(currencies, dict)
    for code, figures in currencies.items():
        for metric in ("ar", "beginning_ar", "ending_current_ar", "credit_sales"):
            rows.append((metric, code, figures[metric]))
        rows.append(("dso_days", code, figures["dso_days"]))
        rows.append(("cei_percent", code, figures["cei_percent"]))
        rows.append(("write_offs_count", code, figures["write_offs"]["count"]))
        rows.append(("write_offs_amount", code, figures["write_offs"]["amount"]))
        rows.append(("disputed_amount", code, figures["disputed"]))
    billing, paying, disputes = (
        document["billing_accuracy"],
        document["average_days_to_pay"],
        document["open_disputes"],
    )
    assert isinstance(billing, dict) and isinstance(paying, dict) and isinstance(disputes, dict)
    rows += [
        ("invoices_issued", "", billing["issued"]),
        ("invoices_without_discrepancy", "", billing["without_discrepancy"]),
        ("billing_accuracy_percent", "", billing["rate_percent"]),
        ("invoices_paid", "", paying["invoices"]),
        ("average_days_to_pay", "", paying["days"]),
        ("open_disputes", "", disputes["count"]),
        ("oldest_dispute_age_days", "", disputes["oldest_age_days"]),
    ]
    return rows
