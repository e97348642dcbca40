"""Options shared by several commands, and the one place settings are loaded for the CLI."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from billsync.config.loader import load_settings
from billsync.config.settings import Settings
from billsync.core.logs import configure_logging
from billsync.core.settings import SourceSection

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config file (default: $BILLSYNC_CONFIG; environment variables override it).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings_for(
    ctx: typer.Context, config: Path | None, *, logs_to_stderr: bool = False
) -> Settings:
    """Load settings (raising ConfigError, which `main` reports) and set up logging.

    ``logs_to_stderr``: for commands whose stdout is a machine-readable document
    (`--json`), so the JSON lines of the log never mix with it."""
    root = ctx.find_root().obj
    if root is None:
        root = ctx.find_root().obj = {}
    settings = load_settings(config or root.get("config"))
    root["ledger_url"] = settings.ledger.url  # for `main`'s "cannot reach the ledger"
    root["scrubber"] = configure_logging(
        log_format=root.get("log_format") or settings.logging.format,
        level=root.get("log_level") or settings.logging.level,
        secrets=settings.secret_values(),
        patterns=settings.secret_patterns(),
        stream=sys.stderr if logs_to_stderr else None,
    )
    return settings


def target_connections(settings: Settings, recorded: Iterable[str] = ()) -> list[str]:
    """The target connections an operator may name: every configured connection that
    is not a deal source, and those ``recorded`` in the ledger (it may hold rows of a
    connection no longer configured)."""
    configured = {
        name
        for name, connection in settings.every_connection().items()
        if not isinstance(connection.section, SourceSection) and name != settings.sync.source
    }
    return sorted(configured | set(recorded))
