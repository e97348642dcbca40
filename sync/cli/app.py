"""The `billsync` command line: wiring only; each command's work lives in its own module.

Exit codes (DESIGN.md): 0 clean, 1 some items failed and are queued, 2 configuration or
credentials wrong (or the capability is not built yet) and nothing attempted, 3 another
run holds the lease. Errors reach the user as sentences, never as tracebacks; set
`BILLSYNC_DEBUG=1` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version
from typing import Annotated

import typer

from config.loader import ConfigError
from sync.cli import (
    auth_cmd,
    config_cmd,
    ledger_cmd,
    mappings_cmd,
    plan_cmd,
    reconcile_cmd,
    run_cmd,
    sandbox_cmd,
)
from sync.cli.not_built import not_built
from sync.cli.options import ConfigOption, JsonOption
from sync.logs import SecretScrubber

CONFIG_ERROR_EXIT = 2
INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE: a bug of ours, distinct from the documented codes

app = typer.Typer(
    name="billsync",
    help="Quote-to-cash sync: closed-won Salesforce deals become QuickBooks Online or "
    "Stripe invoices exactly once, and payments flow back onto the deal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"billsync {version('billsync')}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: ConfigOption = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="json (default when not a TTY) or console.",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = None,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    # `main` passes a dict in as obj so it can still reach the scrubber after a failure.
    if ctx.obj is None:
        ctx.obj = {}
    ctx.obj.update(config=config, log_format=log_format, log_level=log_level)


@app.command()
def run(
    ctx: typer.Context,
    config: ConfigOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be done (= billsync plan).")
    ] = False,
    as_json: JsonOption = False,
    since: plan_cmd.SinceOption = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Run only these stages: pull, invoice, payments, writeback, retry, reconcile.",
        ),
    ] = None,
) -> None:
    """Run one sync cycle: pull deals, invoice them exactly once, apply payments, write back.

    Exit codes: 0 clean; 1 some items failed and are recorded for retry or attention;
    2 configuration or credentials wrong; 3 another run holds the lease."""
    if dry_run:
        plan_cmd.plan(ctx, config, as_json, since)
        return
    run_cmd.run(ctx, config, as_json, since, only)


@app.command()
def serve(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Listen address (default: server.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Listen port (default: server.port).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            help='Also run the sync cycle on this cron schedule, in UTC (e.g. "*/15 * * * *"); '
            "the run lease keeps it safe beside an external cron.",
        ),
    ] = None,
) -> None:
    """Serve webhooks (POST /webhooks/stripe, /webhooks/quickbooks), /healthz, /readyz
    and /metrics; stored events are processed by a background worker."""
    from sync.cli import serve_cmd

    serve_cmd.serve(ctx, config, host, port, workers, schedule)


@app.command()
def demo() -> None:
    """Run the whole loop against the built-in sandbox and print what happened."""
    from rich.console import Console

    from sync.demo import run_demo

    raise typer.Exit(run_demo(Console(soft_wrap=True)))


@app.command()
def status(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Last runs, queue depth, cursors, inbox lag and credential health."""
    not_built("status", "the status view arrives with the ops surface")


failures_app = typer.Typer(help="Inspect, retry and resolve failed work items.")
report_app = typer.Typer(help="AR reports: aging and KPIs.")

app.add_typer(sandbox_cmd.app, name="sandbox")
app.add_typer(failures_app, name="failures")
app.add_typer(report_app, name="report")
app.add_typer(mappings_cmd.app, name="mappings")
app.add_typer(auth_cmd.app, name="auth")
app.add_typer(config_cmd.app, name="config")
app.command("migrate")(ledger_cmd.migrate)
app.command("plan")(plan_cmd.plan)
app.command("reconcile")(reconcile_cmd.reconcile)


@failures_app.command("list")
def failures_list() -> None:
    """List failed work items."""
    not_built("failures list", "the failure log arrives with the ops surface")


@failures_app.command("show")
def failures_show(item_id: str) -> None:
    """Show everything about one failed item."""
    not_built("failures show", "the failure log arrives with the ops surface")


@failures_app.command("retry")
def failures_retry(item_ids: list[str]) -> None:
    """Queue failed items for another attempt."""
    not_built("failures retry", "the failure log arrives with the ops surface")


@failures_app.command("resolve")
def failures_resolve(item_ids: list[str]) -> None:
    """Mark failed items resolved with a note."""
    not_built("failures resolve", "the failure log arrives with the ops surface")


@report_app.command("aging")
def report_aging() -> None:
    """Accounts-receivable aging by currency and bucket."""
    not_built("report aging", "AR reports arrive with the ops surface")


@report_app.command("kpis")
def report_kpis() -> None:
    """DSO, collection effectiveness, billing accuracy, disputes, write-offs."""
    not_built("report kpis", "AR reports arrive with the ops surface")


def main() -> None:
    """Console-script entry point: turns known errors into sentences and exit codes."""
    state: dict[str, object] = {}
    try:
        app(obj=state)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        sys.exit(CONFIG_ERROR_EXIT)
    except Exception as exc:  # the last line of defence: no traceback as a user interface
        if os.environ.get("BILLSYNC_DEBUG") == "1":
            raise
        scrubber = state.get("scrubber")
        if not isinstance(scrubber, SecretScrubber):
            scrubber = SecretScrubber()
        message = scrubber.scrub(f"{type(exc).__name__}: {exc}")
        print(
            f"billsync: internal error: {message}\n"
            "This is a bug in billsync; rerun with BILLSYNC_DEBUG=1 for the traceback.",
            file=sys.stderr,
        )
        sys.exit(INTERNAL_ERROR_EXIT)
