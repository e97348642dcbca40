"""`billsync reconcile [--json] [--fix]`: the three-way comparison (deal source ↔ ledger ↔
targets), shown as a table, plain lines (not a TTY) or JSON.

Exit codes: 0 nothing disagrees (or only discrepancies an operator acknowledged), 1 a
discrepancy nobody acknowledged is open (or something could not be checked),
2 configuration or mapping files wrong, 3 a run holds the ledger's lease (reconcile
would see its half-done work as problems).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from billsync.sync.cli.options import ConfigOption, JsonOption, settings_for
from billsync.sync.engine.summary import EXIT_CONFIG, EXIT_LEASE_HELD

if TYPE_CHECKING:
    from billsync.sync.engine.cycle import Engine
    from billsync.sync.engine.reconcile import ReconcileReport

FixOption = Annotated[
    bool,
    typer.Option(
        "--fix",
        help="Also do the mechanical fixes: queue write-backs that were lost or gave up, "
        "and record the target's money for invoices the ledger has wrong.",
    ),
]
LimitOption = Annotated[
    int | None,
    typer.Option(
        "--limit",
        min=1,
        help="Invoices read back per target in this pass (default 500); the next pass "
        "continues where this one stopped.",
        show_default=False,
    ),
]


def reconcile(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    fix: FixOption = False,
    limit: LimitOption = None,
) -> None:
    """Compare the deal source, the ledger and the targets; list every discrepancy."""
    from billsync.mappings.loader import MappingError
    from billsync.sync import wiring
    from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head

    # stdout is the report (a JSON document, a table or lines); logs go to stderr.
    settings = settings_for(ctx, config, logs_to_stderr=True)
    database = create_ledger_engine(settings.ledger.url)
    try:
        upgrade_to_head(database)  # as `billsync run` does: a new version just works
        try:
            engine = wiring.engine_for(settings, Ledger(database))
        except MappingError as exc:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(EXIT_CONFIG) from None
        code = run_reconcile(engine, fix=fix, as_json=as_json, limit=limit)
    finally:
        database.dispose()
    raise typer.Exit(code)


def run_reconcile(
    engine: Engine,
    *,
    fix: bool,
    as_json: bool,
    limit: int | None = None,
    console: Console | None = None,
) -> int:
    """One pass under the run lease, printed; returns the exit code."""
    # The engine is imported here, not at module level: `billsync --help` stays quick.
    from billsync.sync.engine.cycle import LEASE_TTL, RUN_LEASE
    from billsync.sync.engine.reconcile import DEFAULT_LIMIT
    from billsync.sync.engine.reconcile import reconcile as reconcile_pass

    console = console or Console(soft_wrap=True)
    ledger = engine.ledger
    if not ledger.acquire_lease(RUN_LEASE, engine.holder, LEASE_TTL):
        typer.echo(
            "billsync reconcile: a run holds the ledger lease; try again when it has finished",
            err=True,
        )
        return EXIT_LEASE_HELD
    try:
        report = reconcile_pass(engine, fix=fix, limit=limit or DEFAULT_LIMIT)
    finally:
        ledger.release_lease(RUN_LEASE, engine.holder)
    if as_json:
        console.out(json.dumps(report.as_json(), indent=2), highlight=False)
    elif console.is_terminal:
        _table(report, console)
    else:
        _lines(report, console)
    return report.exit_code


def _table(report: ReconcileReport, console: Console) -> None:
    table = Table(title=f"Open discrepancies ({len(report.open)})")
    for column in ("id", "kind", "deal", "target", "expected", "actual", "detected", "detail"):
        table.add_column(column)
    for d in report.open:
        table.add_row(
            f"{d.id or ''}{' (ack)' if d.acknowledged_at else ''}",
            str(d.kind),
            d.deal_id or "",
            d.target or "",
            d.expected or "",
            d.actual or "",
            f"{d.detected_at:%Y-%m-%d %H:%M}",
            d.detail,
        )
    console.print(table)
    for line in _footer(report):
        console.print(line, markup=False, highlight=False)


def _lines(report: ReconcileReport, console: Console) -> None:
    """One line per fact, greppable: the kind first, then key=value pairs."""
    for d in report.open:
        ack = f" acknowledged_by={d.acknowledged_by}" if d.acknowledged_at else ""
        console.out(
            f"{d.kind} deal={d.deal_id or '-'} target={d.target or '-'} id={d.id or '-'}{ack} "
            f"expected={d.expected or '-'} actual={d.actual or '-'} "
            f"detected={d.detected_at.isoformat()} {d.detail}",
            highlight=False,
        )
    for line in _footer(report):
        console.out(line, highlight=False)


def _footer(report: ReconcileReport) -> list[str]:
    lines = [f"fixed {f.action} deal={f.deal_id or '-'} {f.detail}" for f in report.fixed]
    lines += [f"error {system}: {m}" for system, ms in report.errors.items() for m in ms]
    lines += [f"skipped {reason}" for reason in report.skipped]
    checked = ", ".join(f"{target} {n}" for target, n in report.checked.items()) or "none"
    acked = len(report.open) - len(report.unacknowledged)
    lines.append(
        f"{len(report.open)} open ({acked} acknowledged; {report.recorded} new, "
        f"{len(report.resolved)} resolved this pass); invoices read back: {checked}"
    )
    return lines
