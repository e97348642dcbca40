"""`billsync auth <connector>`: each installed connector's own credentials command.

A connector declares the command on its spec (``ConnectorSpec.cli``, e.g. an OAuth
target's command connects a company or reports its token health); billsync mounts
it here under the connector's name. The connector imports nothing of billsync but the
core: what it needs from the command line — its settings section, read and validated
like every command's configuration, and the ledger's credential store — it asks for
through ``open(ctx, config)`` (`billsync.core.plugins.CommandOpener`), implemented here.

The commands are found when ``billsync auth`` is used, not when the command line is
imported, so other commands do not pay for loading every plug-in.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from billsync.core.plugins import ConnectorSpec, installed_specs
from billsync.core.problems import ConfigError, ConfigProblem
from billsync.sync.cli.options import settings_for

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from billsync.core.protocols import CredentialStore

__all__ = ["ConnectorCommands", "LedgerCommandContext", "open_command"]


@dataclass(frozen=True)
class LedgerCommandContext:
    """`billsync.core.plugins.CommandContext` over the configured ledger."""

    system: str
    section: Any
    database: Engine

    @property
    def connection(self) -> str:
        return self.system

    def credentials(self, *, create: bool) -> CredentialStore | None:
        from billsync.sync.ledger import Ledger, is_current, upgrade_to_head
        from billsync.sync.ledger.credential_store import LedgerCredentialStore

        if create:
            upgrade_to_head(self.database)
        elif not is_current(self.database):
            return None
        holder = f"billsync-auth@{socket.gethostname()}:{os.getpid()}"
        return LedgerCredentialStore(Ledger(self.database), holder)

    def last_refusal(self) -> Mapping[str, str] | None:
        from billsync.sync.engine.cycle import refused_cursor
        from billsync.sync.ledger import Ledger, is_current

        if not is_current(self.database):
            return None
        raw = Ledger(self.database).get_cursor(refused_cursor(self.system))
        refused: dict[str, str] | None = json.loads(raw) if raw else None
        return refused


def open_command(name: str, ctx: typer.Context, config: Path | None) -> LedgerCommandContext:
    """`CommandOpener` for connector ``name``: the configuration read (ConfigError on a
    problem: exit 2) and logging set up as for every command; the ledger opened lazily.
    ``billsync auth --connection X <name>`` opens connection X (of kind ``name``)
    instead of the connector's own section."""
    from billsync.sync.ledger import create_ledger_engine

    settings = settings_for(ctx, config)
    chosen = _chosen_connection(ctx) or name
    connection = settings.every_connection().get(chosen)
    if connection is None or connection.kind != name:
        of_kind = [n for n, c in settings.every_connection().items() if c.kind == name]
        raise ConfigError(
            [
                ConfigProblem(
                    "billsync auth",
                    "--connection",
                    f"no {name} connection '{chosen}' is configured "
                    f"({name} connections: {', '.join(of_kind)})",
                )
            ]
        )
    database = create_ledger_engine(settings.ledger.url)
    return LedgerCommandContext(chosen, connection.section, database)


def _chosen_connection(ctx: typer.Context) -> str | None:
    """The group's ``--connection``, wherever the connector's command nests it."""
    node: Any = ctx
    while node is not None:
        if isinstance(node.obj, dict) and node.obj.get(CONNECTION_KEY):
            return str(node.obj[CONNECTION_KEY])
        node = node.parent
    return None


@cache
def _with_commands() -> dict[str, ConnectorSpec]:
    return {name: spec for name, spec in installed_specs()[0].items() if spec.cli is not None}


class ConnectorCommands(TyperGroup):
    """`billsync auth`'s sub-commands: one per installed connector that declares one.

    (The click types stay ``Any``: typer vendors its own click from 0.29 on.)"""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(_with_commands())

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        spec = _with_commands().get(cmd_name)
        if spec is None or spec.cli is None:
            return None
        # typer's own rule: an app of one command (and no callback) is that command.
        command = typer.main.get_command(spec.cli(partial(open_command, spec.name)))
        command.name = cmd_name
        return command


app = typer.Typer(
    cls=ConnectorCommands, help="Connect and inspect vendor credentials.", no_args_is_help=True
)

CONNECTION_KEY = "auth_connection"


@app.callback()
def _auth(
    ctx: typer.Context,
    connection: Annotated[
        str | None,
        typer.Option(
            "--connection",
            help="The connection to act on, when several of the connector's kind are "
            "configured under connections: (default: the connector's own section).",
        ),
    ] = None,
) -> None:
    """Connect and inspect vendor credentials."""
    ctx.ensure_object(dict)[CONNECTION_KEY] = connection
