"""`billsync deals reroute DEAL --to TARGET --note …`: move a deal to another target, on
purpose and audited (DESIGN.md "Exactly once": once per deal, not per target).

Refused (exit 2, nothing changed) while the deal has a live invoice in its old target
(void it there first, then run `billsync reconcile` so the ledger sees it voided) or an
attempt whose outcome is unknown (`billsync run` resolves it). Otherwise the old target's
record is closed as ``rerouted``, the audit trail names who, why and the old invoice,
and the deal is queued: the next run reads it again and bills it where it now routes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from billsync.sync.cli.options import ConfigOption, JsonOption, settings_for, target_connections
from billsync.sync.cli.status_cmd import open_ledger
from billsync.sync.engine.routing import RerouteRefused, reroute
from billsync.sync.ops.failures import default_actor
from billsync.sync.ops.render import dumps

EXIT_OK, EXIT_USAGE = 0, 2

app = typer.Typer(help="Operator actions on one deal (reroute to another target).")


@app.command("reroute")
def reroute_command(
    ctx: typer.Context,
    deal_id: Annotated[str, typer.Argument(help="The deal's id in the deal source.")],
    to: Annotated[str, typer.Option("--to", help="The new target connection (e.g. qbo_uk).")],
    note: Annotated[str, typer.Option("--note", help="Why (kept in the audit trail).")],
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Who to name in the audit trail (default cli:<login>)."),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move a deal to another target; refused while its old invoice is live."""
    settings = settings_for(ctx, config, logs_to_stderr=True)
    targets = target_connections(settings)
    if to not in targets:
        typer.echo(f"billsync deals reroute: --to must be one of {', '.join(targets)}", err=True)
        raise typer.Exit(EXIT_USAGE)
    with open_ledger(settings) as ledger:
        try:
            moved = reroute(
                ledger,
                deal_id,
                to,
                note=note,
                actor=actor or default_actor(),
                now=datetime.now(UTC),
            )
        except RerouteRefused as refused:
            typer.echo(f"billsync deals reroute: {refused}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
    closed = [{"target": r.target, "state": r.state} for r in moved.closed]
    if as_json:
        typer.echo(dumps({"deal_id": deal_id, "to": to, "closed": closed}))
        return
    old = ", ".join(r.target for r in moved.closed) or "no other target"
    typer.echo(
        f"deal {deal_id} rerouted to {to} (closed in {old}); the next `billsync run` "
        f"invoices it in {to} if its routing points there"
    )
