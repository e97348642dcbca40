"""`billsync plan` (= `billsync run --dry-run`): the drafts a run would create, and why
the rejected deals would be rejected. Reads only; writes nothing anywhere."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors.base import ConnectorError, ErrorClass
from mappings.loader import MappingError
from sync.cli.options import ConfigOption, JsonOption, settings_for
from sync.engine.first_run import watermark_at
from sync.planning import PlanReport, plan_deals

SinceOption = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        help="Only deals changed after this UTC time (default: every closed-won deal).",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"],
    ),
]

EXIT_CLEAN, EXIT_REJECTIONS, EXIT_CONFIG = 0, 1, 2


def plan(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    since: SinceOption = None,
) -> None:
    """Show the invoices a run would create and the deals it would reject (no writes)."""
    from sync import wiring

    settings = settings_for(ctx, config, logs_to_stderr=as_json)
    try:
        mapping = wiring.mapping_for(settings)
    except MappingError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    report = PlanReport()
    cursor = _cursor(since)
    with wiring.deal_source(settings, mapping) as source:
        planner = wiring.planner_for(settings, mapping)
        try:
            for checkpointed in source.pull(cursor):
                for outcome in plan_deals([checkpointed.item], planner):
                    report.add(outcome)
        except ConnectorError as exc:
            typer.echo(f"billsync plan: {exc}", err=True)
            fatal = exc.error_class in (ErrorClass.AUTH, ErrorClass.INVALID_DATA)
            raise typer.Exit(EXIT_CONFIG if fatal else EXIT_REJECTIONS) from None
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        _print(report)
    raise typer.Exit(EXIT_REJECTIONS if report.rejected else EXIT_CLEAN)


def _cursor(since: datetime | None) -> str | None:
    return watermark_at(since) if since is not None else None


def _print(report: PlanReport) -> None:
    console = Console(soft_wrap=True)
    drafts = Table(title=f"Invoices that would be created ({len(report.drafts)})")
    for column in ("deal", "target", "customer", "lines", "total", "doc number"):
        drafts.add_column(column)
    for draft in report.drafts:
        drafts.add_row(
            draft.deal_id,
            draft.target,
            draft.customer.name,
            str(len(draft.lines)),
            f"{draft.total} {draft.currency}",
            draft.doc_number or "",
        )
    console.print(drafts)
    if report.rejected:
        # One sentence per problem reads better than a narrow table, and greps well.
        console.print(f"\nDeals that would be rejected ({len(report.rejected)}):")
        for outcome in report.rejected:
            for problem in outcome.rejections:
                console.print(f"  {problem.message()}", markup=False, highlight=False)
    console.print(
        f"{report.deals_seen} deals read, {len(report.drafts)} invoices planned, "
        f"{len(report.rejected)} rejected. Nothing was written."
    )
