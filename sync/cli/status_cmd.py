"""`billsync status [--json]`: runs, queue, cursors, inbox, discrepancies, credentials.

Reads the ledger only (no vendor call). Exit codes: 0 nothing needs a person; 1 the
status lists warnings (dead failures, a crashed run, an expiring token a connector
reports, a stalled inbox, the deal source's quota floor); 2 configuration wrong.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from billsync.sync.ops.render import dumps, human_age

if TYPE_CHECKING:
    from billsync.config.settings import Settings
    from billsync.sync.ledger import Ledger


@contextmanager
def open_ledger(settings: Settings) -> Iterator[Ledger]:
    """The configured ledger, migrated to head (as `billsync run` does), disposed after."""
    from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head

    database = create_ledger_engine(settings.ledger.url)
    try:
        upgrade_to_head(database)
        yield Ledger(database)
    finally:
        database.dispose()


def status(ctx: typer.Context, config: Path | None, as_json: bool) -> None:
    from billsync.sync.cli.options import settings_for
    from billsync.sync.ops.connections import from_settings
    from billsync.sync.ops.status import build_status

    settings = settings_for(ctx, config, logs_to_stderr=True)
    known = from_settings(settings)
    with open_ledger(settings) as ledger:
        report = build_status(
            ledger, datetime.now(UTC), source=settings.sync.source, connections=known
        )
    document = report.as_json()
    if as_json:
        typer.echo(dumps(document))
    else:
        for line in lines(document, {name: view.label for name, view in known.views.items()}):
            typer.echo(line)
    raise typer.Exit(1 if report.warnings else 0)


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items() if n) or "none"


def _connection_line(row: Mapping[str, Any]) -> str:
    state = "enabled" if row["enabled"] else "disabled"
    stopped = row["stopped_in_last_run"]
    said = f"; the last run stopped calling it: {stopped}" if stopped else ""
    return (
        f"  {row['name']:16} {row['label']} ({row['role']}, {state}); credentials "
        f"{row['credential_health']}; open failures {row['open_failures']}{said}"
    )


def lines(document: dict[str, Any], labels: Mapping[str, str]) -> list[str]:
    """The status as text: one section per concern, warnings last; ``labels`` name the
    configured connections ("Ledgerly (ledgerly_uk)") whose credentials are reported."""
    out = [f"billsync status as of {document['as_of']}", "", "Connections:"]
    out += [_connection_line(row) for row in document["connections"]] or ["  none"]
    out += ["Last runs:"]
    for run in document["runs"]:
        outcome = run["outcome"] or "unfinished"
        counts = _counts(run["counts"])
        took = f"{run['duration_s']} s" if run["duration_s"] is not None else "-"
        out.append(f"  {run['started_at']} {outcome:10} {took:>9}  {counts}")
        for system, reason in run["stopped"].items():
            out.append(f"    {system} stopped: {reason}")
    if not document["runs"]:
        out.append("  none yet")
    lease = document["run_lease"]
    out.append(
        f"Run lease: held by {lease['holder']} since {lease['since']}"
        if lease
        else "Run lease: free"
    )
    queue = document["queue"]
    out += [
        f"Queue: {_counts(queue['by_status'])}",
        f"  open failures by class: {_counts(queue['open_failures_by_class'])}",
        "Cursors:",
    ]
    for cursor in document["cursors"]:
        out.append(
            f"  {cursor['name']:24} moved {human_age(cursor['age_s'])} ago  {cursor['value']}"
        )
    if not document["cursors"]:
        out.append("  none yet")
    inbox = document["inbox"]
    out.append(f"Inbox: lag {human_age(inbox['lag_s'])}; {_counts(inbox['by_status'])}")
    found = document["discrepancies"]
    out.append(f"Open discrepancies: {found['open']} ({_counts(found['by_kind'])})")
    out.append("Credentials:")
    for name, reports in document["credentials"].items():
        out += [f"  {report['summary']}" for report in reports]
        if not reports:
            out.append(f"  {labels.get(name, name)}: no credentials stored in this ledger")
    quota = document["source_quota"]
    if quota["known"]:
        out.append(
            f"  {quota['label']} API: {quota['used']} of {quota['max']} used, "
            f"{quota['remaining']} left (floor {quota['floor_percent']}%), seen "
            f"{human_age(quota['age_s'])} ago"
        )
    else:
        out.append(f"  {quota['label']} API allocation: {quota['note']}")
    warnings = document["warnings"]
    out += ["", "Warnings:" if warnings else "No warnings."]
    out += [f"  {warning}" for warning in warnings]
    return out
