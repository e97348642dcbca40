"""`billsync run`: one sync cycle, with the exit codes of DESIGN.md."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from billsync.core.plugins import ConnectorSpec
from billsync.core.problems import ConfigError, ConfigProblem
from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.mappings.loader import MappingError
from billsync.sync.apicalls import counting_api_calls, hosts_from_settings
from billsync.sync.cli.options import settings_for
from billsync.sync.engine.cycle import (
    DEFAULT_STAGES,
    STAGES,
    Engine,
    LeaseHeld,
    LeaseTakenOver,
    run_cycle,
)
from billsync.sync.engine.first_run import StartChoice, StartNotChosen, resolve_start, watermark_at
from billsync.sync.engine.summary import EXIT_CONFIG, EXIT_LEASE_HELD, RunSummary
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head


def run(
    ctx: typer.Context,
    config: Path | None,
    as_json: bool,
    since: datetime | None,
    only: list[str] | None,
    backfill: bool = False,
) -> None:
    from billsync.sync import wiring

    stages = tuple(only) if only else DEFAULT_STAGES
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise typer.BadParameter(
            f"unknown stage(s) {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}",
            param_hint="--only",
        )
    settings = settings_for(ctx, config, logs_to_stderr=as_json)
    if settings.sync.on_deal_change != "flag":
        # Refuse rather than silently behave like `flag`.
        raise ConfigError(
            [
                ConfigProblem(
                    "configuration",
                    "sync.on_deal_change",
                    "void_and_reissue is not built yet; use flag (record a "
                    "deal_changed_after_invoice discrepancy)",
                )
            ]
        )
    db = create_ledger_engine(settings.ledger.url)
    try:
        upgrade_to_head(db)  # migrations run on start, so a new version just works
        ledger = Ledger(db)
        try:
            engine = wiring.engine_for(settings, ledger)
        except MappingError as exc:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(EXIT_CONFIG) from None
        if since is not None and backfill:
            raise typer.BadParameter(
                "give --since or --backfill, not both", param_hint="--backfill"
            )
        choice = StartChoice(
            since=since.replace(tzinfo=since.tzinfo or UTC) if since is not None else None,
            backfill=backfill,
            start_from=settings.start_from(),
        )
        source = settings.connector_specs[settings.sync.source]
        cursor = _start_cursor(ledger, engine, choice, source) if "pull" in stages else None
        try:
            with (
                counting_api_calls(hosts_from_settings(settings)) as calls,
                _progress(engine, show=sys.stderr.isatty() and not as_json),
            ):
                summary = run_cycle(engine, stages=stages, since=cursor)
            summary.api_calls = dict(sorted(calls.items()))
        except LeaseTakenOver:
            typer.echo(f"billsync run: {LeaseTakenOver.MESSAGE}", err=True)
            raise typer.Exit(EXIT_LEASE_HELD) from None
        except LeaseHeld:
            typer.echo(
                "billsync run: another run holds the lease on this ledger; nothing was done",
                err=True,
            )
            raise typer.Exit(EXIT_LEASE_HELD) from None
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(summary.as_json()))
    else:
        _print(summary)
    raise typer.Exit(summary.exit_code)


def _start_cursor(
    ledger: Ledger, engine: Engine, choice: StartChoice, source: ConnectorSpec
) -> str | None:
    """The watermark to read from on this run (None: the stored one); a never-run ledger
    with no start chosen stops here, before any write (exit 2)."""
    try:
        start = resolve_start(ledger, engine.source, choice, source_name=engine.source_name)
    except StartNotChosen as stop:
        typer.echo(f"billsync run: {stop.message()}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    except ConnectorError as error:
        typer.echo(f"billsync run: counting the closed-won deals failed: {error}", err=True)
        raise typer.Exit(EXIT_CONFIG if error.error_class == ErrorClass.AUTH else 1) from None
    return watermark_at(start, source) if start is not None else None


def _print(summary: RunSummary) -> None:
    data = summary.as_json()
    typer.echo(
        f"run {data['run_id']}: {data['deals_seen']} deals seen, "
        f"{data['invoices_created']} invoices created, {data['invoices_adopted']} adopted, "
        f"{data['payments_applied']} payments applied, {data['writebacks']} write-backs, "
        f"{data['failures']} failures, {data['discrepancies']} new discrepancies "
        f"({data['duration_s']} s)"
    )
    for system, reason in summary.stopped.items():
        typer.echo(f"  {system} stopped for this run: {reason}")
    if summary.failures or summary.needs_attention:
        typer.echo(
            "  what failed and how to fix it: the log events deal.rejected and work.failed "
            "(each names the deal, the field and the fix); failed items are retried next run"
        )


@contextmanager
def _progress(engine: Engine, *, show: bool) -> Iterator[None]:
    """A live progress line on a terminal (e.g. during a `--since` backfill)."""
    if not show:
        yield
        return
    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("reading deals…")

        def update(summary: RunSummary) -> None:
            bar.update(
                task,
                description=f"{summary.deals_seen} deals read, "
                f"{summary.invoices_created + summary.invoices_adopted} invoiced, "
                f"{summary.needs_attention + summary.failures} need attention",
            )

        engine.progress = update
        yield
