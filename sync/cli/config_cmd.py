"""`billsync config check`: validate the configuration and show it with secrets masked."""

from __future__ import annotations

import json

import typer

from billsync.config.settings import CONNECTIONS
from billsync.sync.cli.options import ConfigOption, JsonOption, settings_for
from billsync.sync.ledger.database import describe_url

app = typer.Typer(help="Validate and show the configuration (secrets masked).")


@app.command("check")
def check(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Validate the configuration; exit 2 with one line per problem if it is wrong."""
    settings = settings_for(ctx, config)
    # mode="json" renders SecretStr as '**********'; the ledger URL is shown with its
    # password masked (host and database are what an operator checks here).
    shown = settings.model_dump(mode="json")
    shown["ledger"]["url"] = describe_url(settings.ledger.url)
    if as_json:
        typer.echo(json.dumps(shown, indent=2, sort_keys=True))
        return
    typer.echo("configuration OK")
    named = shown.pop(CONNECTIONS, {})
    for section, values in shown.items():
        _echo_section(section, values)
    for name, values in named.items():
        # A connection's kind first: it says what the keys below it mean.
        _echo_section(f"{CONNECTIONS}.{name}", {"kind": values.pop("kind"), **values})


def _echo_section(prefix: str, values: dict[str, object]) -> None:
    for key, value in values.items():
        typer.echo(f"  {prefix}.{key} = {json.dumps(value)}")
