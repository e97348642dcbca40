"""The honest answer of a command whose capability does not exist yet."""

from __future__ import annotations

import typer

NOT_BUILT_EXIT = 2


def not_built(command: str, what: str) -> None:
    """Say plainly that `command` is not built yet and exit 2 (never a fake success)."""
    typer.echo(
        f"billsync {command}: not built yet — {what}. Nothing was done.",
        err=True,
    )
    raise typer.Exit(NOT_BUILT_EXIT)
