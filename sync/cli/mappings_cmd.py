"""`billsync mappings check`: validate the mapping files a configuration would use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mappings.loader import MappingError, load_mappings
from sync.cli.options import ConfigOption, settings_for

app = typer.Typer(help="Check the mapping files.")

MAPPING_ERROR_EXIT = 2


@app.command("check")
def check(
    ctx: typer.Context,
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Mapping files to check (default: the configured ones)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Validate mapping files: every key, path and transform, with file:line errors."""
    if files:
        paths = list(files)
    elif config is not None or (ctx.find_root().obj or {}).get("config") is not None:
        paths = list(settings_for(ctx, config).sync.mapping_files)
    else:
        paths = []
    try:
        loaded = load_mappings(paths)
    except MappingError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(MAPPING_ERROR_EXIT) from None
    typer.echo(f"mappings OK ({loaded.digest[:12]}): " + ", ".join(loaded.files))
    spec = loaded.spec
    typer.echo(
        f"  routing: {', '.join(f'{t} ← {v}' for t, v in spec.routing.values.items())}\n"
        f"  terms: {', '.join(spec.terms.values)} (default {spec.terms.default})\n"
        f"  product overrides: quickbooks {len(spec.products.quickbooks.map)}, "
        f"stripe {len(spec.products.stripe.map)}"
    )
    typer.echo(
        "  not checked yet: that referenced items, prices, terms and tax codes exist in "
        "QuickBooks and Stripe (arrives with the target connectors)"
    )
