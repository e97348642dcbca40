"""`billsync plan` (= `billsync run --dry-run`): what a run would really do.

It reads the deals a run would read (from the ledger's watermark, or where a first run
would start) and asks the ledger what the run's triage would: new invoices, adoptions
(an attempt pending a look-up), deals already invoiced (skipped), routing conflicts
(an attempt unresolved in another target) and deals that would be rejected; with the
known failures the retry stage would meet. Reads only: no ledger is created, migrated
or written, and the only vendor calls are reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from billsync.config.settings import Settings
from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.mappings.loader import MappingError
from billsync.mappings.plan import Rejected
from billsync.sync.cli.options import ConfigOption, JsonOption, settings_for
from billsync.sync.engine.cycle import deals_cursor
from billsync.sync.engine.failures import INVOICE
from billsync.sync.engine.first_run import StartChoice, StartNotChosen, resolve_start, watermark_at
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.ops_reads import FailureView
from billsync.sync.plan_ledger import Judged, Verdict, counts, failure_json, judge
from billsync.sync.planning import PlanReport, plan_deals

SinceOption = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        help="Only deals changed after this UTC time (default: from the ledger's watermark).",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"],
    ),
]

EXIT_CLEAN, EXIT_REJECTIONS, EXIT_CONFIG = 0, 1, 2
BATCH = 200


def plan(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    since: SinceOption = None,
) -> None:
    """Show what a run would do: invoices it would create, adopt or skip, routing
    conflicts, the deals it would reject and the known failures (no writes)."""
    from billsync.sync import wiring

    settings = settings_for(ctx, config, logs_to_stderr=as_json)
    try:
        mapping = wiring.mapping_for(settings)
    except MappingError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    report = PlanReport()
    judged: list[Judged] = []
    extra: dict[str, Any] = {}
    with _existing_ledger(settings) as ledger, wiring.deal_source(settings, mapping) as source:
        planner = wiring.planner_for(settings, mapping)
        label = settings.connector_specs[settings.sync.source].label
        try:
            cursor = _start(ledger, source, since, settings, extra)
            pulled = iter(source.pull(cursor))
            while chunk := list(islice(pulled, BATCH)):
                items = [checkpointed.item for checkpointed in chunk]
                ids = [_deal_id(i) for i in items]
                known = ledger.deals_for(ids) if ledger else {}
                work = ledger.find_work_for(INVOICE, ids) if ledger else {}
                for item in items:
                    deal_id = _deal_id(item)
                    records = [r for (deal, _t), r in known.items() if deal == deal_id]
                    for outcome in plan_deals([item], planner, label):
                        verdict = judge(item, outcome, records, work.get(deal_id), mapping.digest)
                        if verdict.verdict is Verdict.NEW or (
                            verdict.verdict is Verdict.REJECTED and isinstance(outcome, Rejected)
                        ):
                            report.add(outcome)
                        else:
                            judged.append(verdict)
        except ConnectorError as exc:
            typer.echo(f"billsync plan: {exc}", err=True)
            fatal = exc.error_class in (ErrorClass.AUTH, ErrorClass.INVALID_DATA)
            raise typer.Exit(EXIT_CONFIG if fatal else EXIT_REJECTIONS) from None
        failures = ledger.failures(FailureView.OPEN) if ledger else []
    data = {
        **report.as_json(),
        **extra,
        "verdicts": counts(judged)
        | {str(Verdict.NEW): len(report.drafts), str(Verdict.REJECTED): len(report.rejected)},
        "adoptions": [j.as_json() for j in judged if j.verdict is Verdict.ADOPT],
        "already_invoiced": [j.as_json() for j in judged if j.verdict is Verdict.INVOICED],
        "routing_conflicts": [j.as_json() for j in judged if j.verdict is Verdict.ROUTING],
        "known_failures_skipped": [
            j.as_json() for j in judged if j.verdict is Verdict.KNOWN_FAILURE
        ],
        "known_failures": [failure_json(item) for item in failures],
    }
    data["deals_seen"] = report.deals_seen + len(judged)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _print(report, data)
    raise typer.Exit(EXIT_REJECTIONS if report.rejected else EXIT_CLEAN)


def _deal_id(item: Any) -> str:
    return str(getattr(item, "id", None) or item.deal_id)


def _start(
    ledger: Ledger | None,
    source: object,
    since: datetime | None,
    settings: Settings,
    extra: dict[str, Any],
) -> str | None:
    """Where the run would read from: --since, the ledger's watermark, or where a first
    run would start. A first run that would stop is said, and every deal is shown."""
    choice = StartChoice(
        since=since.replace(tzinfo=since.tzinfo or UTC) if since is not None else None,
        start_from=settings.start_from(),
    )
    try:
        start = resolve_start(
            ledger, source, choice, source_name=settings.sync.source, record=False
        )
    except StartNotChosen as stop:
        extra["first_run"] = {"stops": True, "won_deals": stop.won, "message": stop.message()}
        return None
    if start is not None:
        return watermark_at(start, settings.connector_specs[settings.sync.source])
    return ledger.get_cursor(deals_cursor(settings.sync.source)) if ledger is not None else None


@contextmanager
def _existing_ledger(settings: Settings) -> Iterator[Ledger | None]:
    """The ledger if it exists and is at this version's schema; None otherwise (a run
    would create or migrate it: a plan never does)."""
    from sqlalchemy.engine import make_url

    from billsync.sync.ledger import create_ledger_engine
    from billsync.sync.ledger.migrate import is_current

    url = make_url(settings.ledger.url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:" or not Path(database).expanduser().exists():
            yield None
            return
    db = create_ledger_engine(settings.ledger.url)
    try:
        yield Ledger(db) if is_current(db) else None
    finally:
        db.dispose()


def _print(report: PlanReport, data: dict[str, Any]) -> None:
    console = Console(soft_wrap=True)

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    first_run = data.get("first_run")
    if first_run:
        say(f"A run would stop (exit 2): {first_run['message']}")
        say("Below: what a run with --backfill would do.\n")
    # Plain lines, ids whole: greppable, and never cut by a narrow terminal.
    say(f"Invoices that would be created ({len(report.drafts)}):")
    for draft in report.drafts:
        say(
            f"  {draft.deal_id}  {draft.target}  {draft.customer.name}  "
            f"{len(draft.lines)} lines  {draft.total} {draft.currency}  "
            f"doc number {draft.doc_number or '-'}"
        )
    for key, title in (
        ("adoptions", "Earlier attempts a run would look up first (adopt if found)"),
        ("routing_conflicts", "Routing conflicts (resolved in the old target first)"),
        ("already_invoiced", "Already invoiced (skipped)"),
        ("known_failures_skipped", "Failed before with this content and mapping (skipped)"),
    ):
        rows = data[key]
        if rows:
            say(f"\n{title} ({len(rows)}):")
            for row in rows:
                say(f"  {row['deal_id']}  {row['target']}  {row['note']}")
    if report.rejected:
        # One sentence per problem reads better than a narrow table, and greps well.
        say(f"\nDeals that would be rejected ({len(report.rejected)}):")
        for outcome in report.rejected:
            for problem in outcome.rejections:
                say(f"  {problem.message()}")
    if data["known_failures"]:
        say(f"\nKnown failures in the ledger ({len(data['known_failures'])}):")
        for row in data["known_failures"]:
            say(
                f"  #{row['id']} {row['kind']} {row['deal_id'] or ''} {row['target'] or ''} "
                f"{row['status']}: {row['message'] or ''}"
            )
    say(
        f"\n{data['deals_seen']} deals read, {len(report.drafts)} invoices planned, "
        f"{len(data['adoptions'])} look-ups, {len(data['already_invoiced'])} already "
        f"invoiced, {len(data['routing_conflicts'])} routing conflicts, "
        f"{len(report.rejected)} rejected. Nothing was written."
    )
