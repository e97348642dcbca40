"""`billsync discrepancies list|ack|resolve`: what reconciliation found, and an
operator's answer to it (see `billsync.sync.ops.discrepancies`).

``ack ID --note …`` marks an open discrepancy as seen: it stays listed and re-verified,
but `billsync reconcile` no longer exits 1 for it (until its amounts change).
``resolve ID --note …`` closes it by hand. Both are audited with who and the note.

Exit codes: 0 done; 2 usage error (unknown id, already resolved, empty note).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from billsync.sync.cli.options import ConfigOption, JsonOption, settings_for
from billsync.sync.cli.status_cmd import open_ledger
from billsync.sync.ledger.discrepancies import (
    DiscrepancyClosed,
    DiscrepancyView,
    UnknownDiscrepancy,
)
from billsync.sync.ops import discrepancies as ops
from billsync.sync.ops.failures import default_actor
from billsync.sync.ops.render import dumps

EXIT_OK, EXIT_USAGE = 0, 2

app = typer.Typer(help="List discrepancies; acknowledge or resolve one with a note.")

IdArg = Annotated[
    int, typer.Argument(help="The discrepancy's id (from the list).", show_default=False)
]
NoteOption = Annotated[
    str, typer.Option("--note", help="Why (kept in the audit trail).", show_default=False)
]
ActorOption = Annotated[
    str | None,
    typer.Option("--actor", help="Who to name in the audit trail (default cli:<login>)."),
]


def _usage(message: str) -> typer.Exit:
    typer.echo(f"billsync discrepancies: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


@app.command("list")
def list_command(
    ctx: typer.Context,
    config: ConfigOption = None,
    view: Annotated[
        DiscrepancyView, typer.Option("--status", help="Which discrepancies.")
    ] = DiscrepancyView.OPEN,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    as_json: JsonOption = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 1000,
) -> None:
    """List discrepancies (open by default, oldest first)."""
    settings = settings_for(ctx, config, logs_to_stderr=True)
    with open_ledger(settings) as ledger:
        rows = ops.list_discrepancies(ledger, view, kind, limit)
    console = Console(soft_wrap=True)
    if as_json:
        console.out(dumps(rows), highlight=False)
        return
    if console.is_terminal:
        table = Table(title=f"Discrepancies ({view}): {len(rows)}")
        for column in ("id", "kind", "deal", "target", "expected", "actual", "state", "detail"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                str(row["id"]),
                row["kind"],
                row["deal_id"] or "",
                row["target"] or "",
                row["expected"] or "",
                row["actual"] or "",
                _state(row),
                row["detail"],
            )
        console.print(table)
        return
    for row in rows:
        console.out(
            f"{row['id']} {row['kind']} deal={row['deal_id'] or '-'} "
            f"target={row['target'] or '-'} expected={row['expected'] or '-'} "
            f"actual={row['actual'] or '-'} state={_state(row)} {row['detail']}",
            highlight=False,
        )


def _state(row: dict[str, object]) -> str:
    if row.get("resolved_at"):
        return "resolved"
    if row.get("acknowledged_at"):
        return f"acknowledged by {row.get('acknowledged_by')}"
    return "open"


@app.command("ack")
def ack_command(
    ctx: typer.Context,
    discrepancy_id: IdArg,
    note: NoteOption,
    config: ConfigOption = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge an open discrepancy: it stays open, but no longer fails reconcile."""
    _act("acknowledged", ctx, config, discrepancy_id, note, actor, as_json)


@app.command("resolve")
def resolve_command(
    ctx: typer.Context,
    discrepancy_id: IdArg,
    note: NoteOption,
    config: ConfigOption = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Close an open discrepancy by hand; reconcile reopens it if it still holds."""
    _act("resolved", ctx, config, discrepancy_id, note, actor, as_json)


def _act(
    done: str,
    ctx: typer.Context,
    config: ConfigOption,
    discrepancy_id: int,
    note: str,
    actor: str | None,
    as_json: bool,
) -> None:
    if not note.strip():
        raise _usage("--note must say why")
    settings = settings_for(ctx, config, logs_to_stderr=True)
    who = actor or default_actor()
    action = ops.acknowledge if done == "acknowledged" else ops.resolve
    with open_ledger(settings) as ledger:
        try:
            row = action(ledger, discrepancy_id, who, note)
        except (UnknownDiscrepancy, DiscrepancyClosed) as exc:
            raise _usage(str(exc)) from None
    if as_json:
        typer.echo(dumps(row))
    else:
        typer.echo(f"{done} discrepancy {discrepancy_id} ({row['kind']}) as {who}")
    raise typer.Exit(EXIT_OK)
