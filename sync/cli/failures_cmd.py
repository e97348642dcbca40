"""`billsync failures list|show|retry|resolve`: the failure log, for people and scripts.

The work is done by `billsync.sync.ops.failures`; this module parses, opens the ledger and
prints (a table on a terminal, one greppable line per item otherwise, or JSON).

Exit codes: 0 done; 1 some items could not be retried/resolved (e.g. a run holds
them; each is named with the reason); 2 usage or configuration error — an unknown
failure id is one ("no failure with id N; see billsync failures list"), and then
nothing at all is changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from billsync.sync.cli.status_cmd import open_ledger
from billsync.sync.ledger.ops_reads import FailureView
from billsync.sync.ops.failures import (
    ActionOutcome,
    FailureDetail,
    FailureQuery,
    FailureRow,
    UnknownFailure,
    default_actor,
    list_failures,
    resolve_failures,
    retry_all,
    retry_failures,
    show_failure,
)
from billsync.sync.ops.render import dumps, iso

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
STAGE_WORDS = {
    "validate": "map and validate the deal into an invoice",
    "writeback": "write the invoice's money state back onto the deal in the deal source",
    "payments": "read the provider's payment events",
}


def parse_since(value: str | None) -> datetime | None:
    """ISO date or date-time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"'{value}' is not an ISO date or date-time (e.g. 2026-11-01 or 2026-11-01T08:00:00Z)",
            param_hint="--since",
        ) from None
    return moment.replace(tzinfo=moment.tzinfo or UTC)


def _usage(message: str) -> typer.Exit:
    typer.echo(f"billsync failures: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


# --- list -----------------------------------------------------------------------------


def list_command(
    ctx: typer.Context,
    config: Path | None,
    view: FailureView,
    connection: str | None,
    error_class: str | None,
    since: str | None,
    as_json: bool,
    limit: int,
) -> None:
    from billsync.sync.cli.options import settings_for
    from billsync.sync.ops.connections import from_settings

    query = FailureQuery(view, connection, error_class, parse_since(since), limit)
    settings = settings_for(ctx, config, logs_to_stderr=True)
    with open_ledger(settings) as ledger:
        rows = list_failures(ledger, query, connections=from_settings(settings))
    console = Console(soft_wrap=True)
    if as_json:
        console.out(dumps([row.as_json() for row in rows]), highlight=False)
    elif console.is_terminal:
        _table(rows, view, console)
    else:
        for row in rows:
            console.out(_line(row), highlight=False)
    if len(rows) == limit:
        typer.echo(f"showing the {limit} most recent; raise --limit to see more", err=True)


def _line(row: FailureRow) -> str:
    cause = f"{row.error_class or '-'}/{row.code or '-'}"
    return (
        f"{row.id} {row.status} {cause} deal={row.deal_id or '-'} target={row.target or '-'} "
        f"stage={row.stage} attempts={row.attempts} last={iso(row.last_attempt_at) or '-'} "
        f"next={iso(row.next_attempt_at) or '-'} {row.message}"
    )


def _table(rows: list[FailureRow], view: FailureView, console: Console) -> None:
    table = Table(title=f"Failures ({view}): {len(rows)}")
    for column in ("id", "status", "class", "code", "deal", "name", "connection", "stage", "tries"):
        table.add_column(column)
    table.add_column("last attempt")
    table.add_column("message", overflow="fold")
    for row in rows:
        table.add_row(
            str(row.id),
            row.status,
            row.error_class or "",
            row.code or "",
            row.deal_id or "",
            row.deal_name or "",
            row.target or "",
            row.stage,
            str(row.attempts),
            f"{row.last_attempt_at:%Y-%m-%d %H:%M}" if row.last_attempt_at else "",
            row.message[:200],
        )
    console.print(table)
    if rows:
        console.print("details and what to do: billsync failures show ID", highlight=False)


# --- show -----------------------------------------------------------------------------


def show_command(ctx: typer.Context, config: Path | None, item_id: int, as_json: bool) -> None:
    from billsync.sync.cli.options import settings_for
    from billsync.sync.ops.connections import from_settings

    settings = settings_for(ctx, config, logs_to_stderr=True)
    with open_ledger(settings) as ledger:
        try:
            detail = show_failure(ledger, item_id, connections=from_settings(settings))
        except UnknownFailure as exc:
            raise _usage(str(exc)) from None
    if as_json:
        typer.echo(dumps(detail.as_json()))
        return
    for line in _detail_lines(detail):
        typer.echo(line)


def _detail_lines(detail: FailureDetail) -> list[str]:
    row = detail.row
    name = f" '{row.deal_name}'" if row.deal_name else ""
    tries = f"{row.attempts} attempt{'s' * (row.attempts != 1)}"
    lines = [
        f"Failure {row.id}: {row.status}, {row.error_class or '-'} {row.code or ''}, {tries}",
        f"  deal {row.deal_id or '-'}{name}; connection {row.target or '-'}; stage {row.stage}; "
        f"failed in {row.system}",
        f"  first seen {iso(row.first_seen)}; last attempt {iso(row.last_attempt_at) or '-'}; "
        f"next attempt {iso(row.next_attempt_at) or '-'}",
        "",
        "What to do:",
        f"  {detail.advice.sentence}",
        "",
        "What was attempted:",
    ]
    invoice = detail.attempted.get("invoice")
    if isinstance(invoice, dict):
        lines.append(
            f"  a {invoice.get('target')} invoice for {invoice.get('customer')}: "
            f"{invoice.get('currency')} {invoice.get('total')}, {invoice.get('lines')} line(s), "
            f"items {', '.join(invoice.get('items') or []) or '-'}, "
            f"number {invoice.get('doc_number') or '-'}, terms {invoice.get('terms') or '-'}, "
            f"idempotency key {invoice.get('idempotency_key')}"
        )
    else:
        stage = str(detail.attempted.get("stage"))
        lines.append(f"  {STAGE_WORDS.get(stage, stage)} ({detail.attempted.get('kind')})")
    if detail.attempted.get("error_shown_on_deal"):
        lines.append(
            f"  with the sync error for the deal: {detail.attempted['error_shown_on_deal']}"
        )
    for problem in detail.attempted.get("problems") or []:
        lines.append(f"  problem: {problem.get('field')}: {problem.get('reason')}")
    lines += ["", "Attempts:"]
    for attempt in detail.attempts:
        kept = " (only the last error is kept)" if attempt.get("only_last_kept") else ""
        lines.append(
            f"  {attempt.get('at') or '-'} attempt {attempt.get('attempt') or '-'}: "
            f"{attempt.get('error_class')} {attempt.get('code') or ''}: "
            f"{attempt.get('message')}{kept}"
        )
    if detail.deal is not None:
        lines += ["", "The deal in the ledger:"]
        for target in detail.deal["targets"]:
            invoice_row = target["invoice"]
            shown = (
                f"invoice {invoice_row['id']} {invoice_row['status']} "
                f"{invoice_row['currency']} {invoice_row['total']} "
                f"(balance {invoice_row['balance']})"
                if invoice_row
                else "no invoice"
            )
            error = f"; last error: {target['last_error']}" if target["last_error"] else ""
            lines.append(f"  {target['target']}: {target['state']}, {shown}{error}")
        for found in detail.deal["discrepancies"]:
            state = "open" if found["open"] else "resolved"
            lines.append(f"  discrepancy {found['kind']} on {found['target'] or '-'} ({state})")
        if not detail.deal["targets"] and not detail.deal["discrepancies"]:
            lines.append("  nothing yet: the deal never got as far as an invoice intent")
    lines += ["", "Audit trail:"]
    if not detail.audit:
        lines.append("  (no operator action yet)")
    for entry in detail.audit:
        note = entry["details"].get("note")
        lines.append(
            f"  {entry['at']} {entry['actor']} {entry['action']}"
            + (f' note="{note}"' if note else "")
        )
    return lines


# --- retry / resolve ------------------------------------------------------------------


def retry_command(
    ctx: typer.Context,
    config: Path | None,
    item_ids: list[int],
    every: bool,
    error_class: str | None,
    connection: str | None,
    actor: str | None,
    note: str | None,
    as_json: bool,
) -> None:
    from billsync.sync.cli.options import settings_for

    if every == bool(item_ids):
        raise _usage("give the ids to retry, or --all (optionally with --class / --connection)")
    if item_ids and (error_class or connection):
        raise _usage("--class and --connection select items for --all; with ids, give only ids")
    settings = settings_for(ctx, config, logs_to_stderr=True)
    who = actor or default_actor()
    with open_ledger(settings) as ledger:
        try:
            if every:
                outcomes = retry_all(
                    ledger, who, error_class=error_class, connection=connection, note=note
                )
            else:
                outcomes = retry_failures(ledger, item_ids, who, note)
        except UnknownFailure as exc:
            raise _usage(str(exc)) from None
    _report("retry", who, outcomes, as_json)


def resolve_command(
    ctx: typer.Context,
    config: Path | None,
    item_ids: list[int],
    note: str,
    actor: str | None,
    as_json: bool,
) -> None:
    from billsync.sync.cli.options import settings_for

    if not item_ids:
        raise _usage("give the ids of the failures to resolve")
    if not note.strip():
        raise _usage("--note must say why the failures are resolved")
    settings = settings_for(ctx, config, logs_to_stderr=True)
    who = actor or default_actor()
    with open_ledger(settings) as ledger:
        try:
            outcomes = resolve_failures(ledger, item_ids, who, note)
        except UnknownFailure as exc:
            raise _usage(str(exc)) from None
    _report("resolve", who, outcomes, as_json)


def _report(action: str, actor: str, outcomes: list[ActionOutcome], as_json: bool) -> None:
    if as_json:
        typer.echo(
            dumps({"action": action, "actor": actor, "items": [o.as_json() for o in outcomes]})
        )
    else:
        verb = "retried" if action == "retry" else "resolved"
        for outcome in outcomes:
            if outcome.done:
                typer.echo(
                    f"{verb} {outcome.id} ({outcome.status_before} → {outcome.status_after})"
                )
            else:
                typer.echo(f"not {verb} {outcome.id}: {outcome.reason}", err=True)
        done = sum(o.done for o in outcomes)
        summary = f"{done} of {len(outcomes)} {verb} as {actor}"
        if action == "retry" and done:
            summary += "; they run at the next `billsync run`"
        typer.echo(summary)
    raise typer.Exit(EXIT_OK if all(o.done for o in outcomes) else EXIT_PARTIAL)
