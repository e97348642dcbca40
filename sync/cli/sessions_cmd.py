"""`billsync sessions list|revoke`: the signed-in sessions of the ops pages.

Sessions live in the ledger (`billsync.sync.ledger.ops_sessions`), so these commands see and
end the sessions of every `billsync serve` worker and replica. Each session is named
by its label, the one the audit trail shows as ``ops-web:<label>``. A revoked session
is refused on its next request; rotating the ops token does not end sessions, so
revoke them all (``--all``) after a rotation or a suspected cookie leak.

Exit codes: 0 done; 2 usage error (a label that is not one, no such live session,
neither LABEL nor --all).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from billsync.sync.cli.options import ConfigOption, JsonOption, settings_for
from billsync.sync.cli.status_cmd import open_ledger
from billsync.sync.ledger.ops_sessions import SESSION_LIFETIME, OpsSession, valid_label
from billsync.sync.ops.failures import default_actor
from billsync.sync.ops.render import dumps, iso

EXIT_OK, EXIT_USAGE = 0, 2

app = typer.Typer(help="List and revoke the signed-in sessions of the ops pages.")


def _usage(message: str) -> typer.Exit:
    typer.echo(f"billsync sessions: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _row(session: OpsSession) -> dict[str, str | None]:
    return {
        "label": session.label,
        "actor": session.actor,
        "client": session.client,
        "created_at": iso(session.created_at),
        "last_seen_at": iso(session.last_seen_at),
        "revoked_at": iso(session.revoked_at) if session.revoked_at else None,
        "revoked_by": session.revoked_by,
    }


@app.command("list")
def list_sessions(
    ctx: typer.Context,
    include_ended: Annotated[
        bool, typer.Option("--all", help="Ended sessions too (logged out, revoked, idle).")
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The live sessions, newest first (label, client address, created, last seen)."""
    settings = settings_for(ctx, config, logs_to_stderr=True)
    idle = timedelta(minutes=settings.ops.session_idle_minutes)
    with open_ledger(settings) as ledger:
        sessions = ledger.ops_sessions(
            idle=idle, lifetime=SESSION_LIFETIME, include_ended=include_ended
        )
    rows = [_row(session) for session in sessions]
    console = Console(soft_wrap=True)
    if as_json:
        console.out(dumps(rows), highlight=False)
        return
    if not console.is_terminal:
        for row in rows:
            console.out(" ".join(f"{k}={v or '-'}" for k, v in row.items()), highlight=False)
        return
    table = Table(title=f"Ops sessions: {len(rows)}")
    for column in ("label", "actor", "client", "created", "last seen", "revoked", "by"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(value or "") for value in row.values()))
    console.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    label: Annotated[
        str | None,
        typer.Argument(help="The session's label (from `list`), or a prefix of 8+ digits."),
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Revoke every live session.")] = False,
    actor: Annotated[
        str | None,
        typer.Option("--actor", help="Who to name in the audit trail (default cli:<login>)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """End sessions now: their next request goes to the login form. Audited."""
    if (label is None) == (not every):
        raise _usage("name one session LABEL, or --all")
    if label is not None and not valid_label(label):
        raise _usage(f"'{label}' is not a session label (8 or more hex digits, from `list`)")
    settings = settings_for(ctx, config, logs_to_stderr=True)
    with open_ledger(settings) as ledger:
        ended = ledger.revoke_ops_sessions(label, actor or default_actor())
    if label is not None and not ended:
        raise _usage(f"no live session with label {label}")
    for session in ended:
        typer.echo(f"revoked {session.label} ({session.actor}, from {session.client or '?'})")
    typer.echo(f"{len(ended)} session(s) revoked")
