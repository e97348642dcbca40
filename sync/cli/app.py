"""The `billsync` command line: wiring only; each command's work lives in its own module.

Exit codes (DESIGN.md): 0 clean, 1 some items failed and are queued, 2 configuration or
credentials wrong and nothing attempted, 3 another run holds the lease. Errors reach the
user as sentences, never as tracebacks; set `BILLSYNC_DEBUG=1` to see the traceback of
an unexpected error.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version
from typing import Annotated

import typer

from billsync.core.logs import SecretScrubber
from billsync.core.plugins import installed_secret_patterns
from billsync.core.problems import ConfigError
from billsync.sync.cli import (
    auth_cmd,
    config_cmd,
    customers_cmd,
    deals_cmd,
    discrepancies_cmd,
    ledger_cmd,
    mappings_cmd,
    plan_cmd,
    reconcile_cmd,
    run_cmd,
    sandbox_cmd,
    sessions_cmd,
)
from billsync.sync.cli.options import ConfigOption, JsonOption

CONFIG_ERROR_EXIT = 2
INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE: a bug of ours, distinct from the documented codes

app = typer.Typer(
    name="billsync",
    help="Quote-to-cash sync: closed-won deals from the CRM become invoices in the "
    "accounting or billing systems exactly once, and payments flow back onto the deal.",
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
    backfill: Annotated[
        bool,
        typer.Option(
            "--backfill",
            help="On a ledger that has never run: invoice every closed-won deal, however "
            "old (without it, the first run needs --since or sync.start_from).",
        ),
    ] = False,
) -> None:
    """Run one sync cycle: pull deals, invoice them exactly once, apply payments, write back.

    Exit codes: 0 clean; 1 some items failed and are recorded for retry or attention;
    2 configuration or credentials wrong, or a first run with no start chosen (--since,
    sync.start_from or --backfill); 3 another run holds the lease."""
    if dry_run:
        plan_cmd.plan(ctx, config, as_json, since)
        return
    run_cmd.run(ctx, config, as_json, since, only, backfill)


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
    """Serve webhooks (POST /webhooks/<connection>, for each connection with a webhook
    secret), /healthz, /readyz and /metrics; stored events are processed by a
    background worker."""
    from billsync.sync.cli import serve_cmd

    serve_cmd.serve(ctx, config, host, port, workers, schedule)


@app.command()
def demo() -> None:
    """Run the whole loop against the built-in sandbox and print what happened."""
    from rich.console import Console

    from billsync.sync.demo import run_demo

    raise typer.Exit(run_demo(Console(soft_wrap=True)))


@app.command()
def status(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Last runs, queue depth, cursors, inbox lag, open discrepancies and credential
    health (OAuth tokens, the deal source's API allocation), from the ledger alone.

    Exit codes: 0 nothing needs a person; 1 warnings are listed; 2 configuration wrong."""
    from billsync.sync.cli import status_cmd

    status_cmd.status(ctx, config, as_json)


failures_app = typer.Typer(help="Inspect, retry and resolve failed work items.")
report_app = typer.Typer(help="AR reports: aging and KPIs.")

app.add_typer(sandbox_cmd.app, name="sandbox")
app.add_typer(failures_app, name="failures")
app.add_typer(report_app, name="report")
app.add_typer(mappings_cmd.app, name="mappings")
app.add_typer(auth_cmd.app, name="auth")
app.add_typer(config_cmd.app, name="config")
app.add_typer(customers_cmd.app, name="customers")
app.add_typer(discrepancies_cmd.app, name="discrepancies")
app.add_typer(deals_cmd.app, name="deals")
app.add_typer(sessions_cmd.app, name="sessions")
app.command("migrate")(ledger_cmd.migrate)
app.command("plan")(plan_cmd.plan)
app.command("reconcile")(reconcile_cmd.reconcile)


FailureIdsArgument = Annotated[
    list[int] | None,
    typer.Argument(help="Failure ids (from `billsync failures list`).", show_default=False),
]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor",
        help="Who the audit trail names (default: cli:<your login>).",
        show_default=False,
    ),
]


@failures_app.command("list")
def failures_list(
    ctx: typer.Context,
    config: ConfigOption = None,
    status: Annotated[
        str,
        typer.Option(
            "--status",
            help="open (retrying by itself or dead), dead (waiting for an operator), "
            "resolved, or all.",
        ),
    ] = "open",
    connection: Annotated[
        str | None,
        typer.Option(
            "--connection",
            "--target",
            help="Only this connection (a target or payment provider, e.g. qbo_uk).",
        ),
    ] = None,
    error_class: Annotated[
        str | None,
        typer.Option(
            "--class",
            help="Only this error class: transient, rate_limited, auth, conflict, "
            "invalid_data, not_found.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only items active since this ISO date or date-time (UTC)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """List failed work items, most recent first (a table, or JSON with --json)."""
    from billsync.sync.cli import failures_cmd
    from billsync.sync.ledger.ops_reads import FailureView

    try:
        view = FailureView(status)
    except ValueError:
        raise typer.BadParameter(
            "choose open, dead, resolved or all", param_hint="--status"
        ) from None
    failures_cmd.list_command(ctx, config, view, connection, error_class, since, as_json, limit)


@failures_app.command("show")
def failures_show(
    ctx: typer.Context,
    item_id: Annotated[int, typer.Argument(help="The failure id.", show_default=False)],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Everything about one failure: the deal, what was attempted, each attempt's error,
    what to do about it, and the audit trail. An unknown id exits 2."""
    from billsync.sync.cli import failures_cmd

    failures_cmd.show_command(ctx, config, item_id, as_json)


@failures_app.command("retry")
def failures_retry(
    ctx: typer.Context,
    item_ids: FailureIdsArgument = None,
    every: Annotated[
        bool, typer.Option("--all", help="Retry every open failure (see --class, --connection).")
    ] = False,
    error_class: Annotated[
        str | None, typer.Option("--class", help="With --all: only this error class.")
    ] = None,
    connection: Annotated[
        str | None,
        typer.Option("--connection", "--target", help="With --all: only this connection."),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="Kept in the audit trail.")] = None,
    actor: ActorOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue failures for the next run with their attempts reset; audited.

    Exit codes: 0 all queued; 1 some could not be (e.g. a run holds them); 2 an unknown
    id (then nothing is changed)."""
    from billsync.sync.cli import failures_cmd

    failures_cmd.retry_command(
        ctx, config, item_ids or [], every, error_class, connection, actor, note, as_json
    )


@failures_app.command("resolve")
def failures_resolve(
    ctx: typer.Context,
    note: Annotated[
        str, typer.Option("--note", help="Why (e.g. fixed by hand in the target); required.")
    ],
    item_ids: FailureIdsArgument = None,
    actor: ActorOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Close failures without retrying them, with a note; audited.

    Exit codes: 0 all resolved; 1 some could not be; 2 an unknown id (nothing changed)."""
    from billsync.sync.cli import failures_cmd

    failures_cmd.resolve_command(ctx, config, item_ids or [], note, actor, as_json)


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Report date, YYYY-MM-DD (default: today, UTC).", show_default=False
    ),
]
CurrencyOption = Annotated[
    str | None,
    typer.Option("--currency", help="Only this currency (ISO code).", show_default=False),
]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")]
ConnectionOption = Annotated[
    str | None,
    typer.Option(
        "--connection", help="Only this connection's invoices (e.g. qbo_uk).", show_default=False
    ),
]


@report_app.command("aging")
def report_aging(
    ctx: typer.Context,
    as_of: AsOfOption = None,
    currency: CurrencyOption = None,
    by: Annotated[
        str | None, typer.Option("--by", help="customer: one row per customer as well.")
    ] = None,
    connection: ConnectionOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Accounts-receivable aging by currency and bucket, and per connection.

    Open balance (total less payments and credit notes settled by the end of the as-of
    day) of every invoice issued by then that is not void, deleted or written off, by
    days past due on the as-of day (the due date the target holds): current (not yet
    due or due that day), 1-30, 31-60, 61-90, 90+. A refund or a dispute does not
    reopen a balance. Per currency, never summed across currencies. Invoices without a
    recorded due date are aged from their issue date."""
    from billsync.sync.cli import report_cmd

    report_cmd.aging_command(ctx, config, as_of, currency, by, as_json, as_csv, connection)


@report_app.command("kpis")
def report_kpis(
    ctx: typer.Context,
    as_of: AsOfOption = None,
    days: Annotated[
        int, typer.Option("--days", min=1, help="Window length in days, ending at --as-of.")
    ] = 90,
    currency: CurrencyOption = None,
    connection: ConnectionOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """DSO, collection effectiveness, billing accuracy, days to pay, disputes, write-offs.

    Window: the --days days ending at --as-of (D); S is the day before it starts. AR(X):
    open balances on day X, as in `billsync report aging`. Money per currency.

    DSO = AR(D) / credit sales in the window x days. Credit sales: totals of invoices
    issued in the window (not void, deleted or draft).

    CEI = (AR(S) + credit sales - AR(D)) / (AR(S) + credit sales - current AR(D)) x 100,
    where current AR(D) is the part not yet due on D.

    Billing accuracy = invoices issued in the window whose deal had no billing
    discrepancy (amount, total, currency, changed after invoicing, missing, voided out
    of band, duplicate) / all issued in the window x 100.

    Average days to pay: over invoices settled in the window, settlement day minus issue
    day; the settlement is the payment or credit note after which the balance stays zero.
    A later refund or dispute does not undo it.

    Open disputes: the invoices' open disputes (inquiries included; won and lost ones
    not), the age of the oldest on D, and the funds withdrawn. Write-offs: invoices
    marked uncollectible with something still due (all to date): count and open
    balance."""
    from billsync.sync.cli import report_cmd

    report_cmd.kpis_command(ctx, config, as_of, days, currency, as_json, as_csv, connection)


def _ledger_problem(state: dict[str, object], exc: Exception) -> str | None:
    """A ledger that cannot be opened is the operator's to fix (exit 2), not a bug."""
    from billsync.sync.ledger.database import ledger_unreachable

    url = state.get("ledger_url")
    return ledger_unreachable(url, exc) if isinstance(url, str) else None


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
            scrubber = SecretScrubber(patterns=installed_secret_patterns())
        unreachable = _ledger_problem(state, exc)
        if unreachable:
            print(f"billsync: {scrubber.scrub(unreachable)}", file=sys.stderr)
            sys.exit(CONFIG_ERROR_EXIT)
        message = scrubber.scrub(f"{type(exc).__name__}: {exc}")
        print(
            f"billsync: internal error: {message}\n"
            "This is a bug in billsync; rerun with BILLSYNC_DEBUG=1 for the traceback.",
            file=sys.stderr,
        )
        sys.exit(INTERNAL_ERROR_EXIT)
