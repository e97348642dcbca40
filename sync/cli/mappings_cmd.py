"""`billsync mappings check`: validate the mapping files a configuration would use."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Protocol, runtime_checkable

import typer

from billsync.core.protocols import ConnectorError
from billsync.mappings.loader import LoadedMapping, MappingError, load_mappings
from billsync.mappings.references import ReferenceProblem, check_references
from billsync.sync.cli.options import ConfigOption, settings_for

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
    """Validate mapping files: every key, path and transform, with file:line errors; with
    --config also that the named items, prices, terms and tax codes exist in the targets
    and every mapped source field exists (the source describes its objects)."""
    configured = config is not None or (ctx.find_root().obj or {}).get("config") is not None
    try:
        if configured:
            from billsync.sync import wiring

            # Checked against the configuration's connections: the names routing and
            # the target sections may use, and what each connection needs.
            loaded = wiring.mapping_for(settings_for(ctx, config), list(files) if files else None)
        else:
            loaded = load_mappings(list(files or []))
    except MappingError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(MAPPING_ERROR_EXIT) from None
    typer.echo(f"mappings OK ({loaded.digest[:12]}): " + ", ".join(loaded.files))
    spec = loaded.spec
    typer.echo(
        f"  routing: {len(spec.routing.rules)} rules; "
        f"{', '.join(f'{t} ← {v}' for t, v in spec.routing.values.items())}\n"
        f"  terms: {', '.join(spec.terms.values)} (default {spec.terms.default})\n"
        f"  product overrides: {_product_overrides(loaded)}"
    )
    if not configured:
        typer.echo(
            "  references not checked: give --config to check that the items, prices, "
            "terms and tax codes named here exist in the targets"
        )
        return
    missing = _check_references(ctx, config, loaded)
    for reference in missing:
        typer.echo(f"mappings: {reference}", err=True)
    fields = _check_source_fields(ctx, config, loaded)
    for field_problem in fields:
        typer.echo(f"mappings: {field_problem}", err=True)
    if missing or fields:
        raise typer.Exit(MAPPING_ERROR_EXIT)
    typer.echo("  references OK: every mapped item, price, term and tax code exists")
    typer.echo("  source fields OK: every mapped and write-back field exists in the source")


def _product_overrides(loaded: LoadedMapping) -> str:
    """How many explicit product-map entries each target key of ``products`` has."""
    spec, targets = loaded.spec, loaded.spec.targets
    counts = []
    for key, products in spec.products:
        product_map = targets.mapping(key).product_map
        if products is not None and product_map is not None:
            counts.append(f"{key} {len(product_map(products))}")
    return ", ".join(counts) or "none"


@runtime_checkable
class ChecksFields(Protocol):
    """A deal source that can say which of the fields it would read or write are missing
    (the deal source's own describe of the objects it reads)."""

    def check_fields(self) -> Sequence[object]: ...


def _check_source_fields(
    ctx: typer.Context, config: Path | None, loaded: LoadedMapping
) -> list[str]:
    from billsync.sync import wiring

    settings = settings_for(ctx, config)
    try:
        with wiring.deal_source(settings, loaded) as source:
            if not isinstance(source, ChecksFields):
                return []
            return [str(problem) for problem in source.check_fields()]
    except ConnectorError as exc:
        return [f"{exc.system}: cannot describe the source objects: {exc.message}"]


def _check_references(
    ctx: typer.Context, config: Path | None, loaded: LoadedMapping
) -> list[ReferenceProblem]:
    """Read each enabled target's catalogue (reads only) and check the mapping's names."""
    from billsync.sync import wiring
    from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head

    settings = settings_for(ctx, config)
    db = create_ledger_engine(settings.ledger.url)
    try:
        upgrade_to_head(db)  # rotating OAuth tokens live in the ledger
        built = wiring.targets_for(settings, Ledger(db), wiring.new_holder())
        catalogs = {name: target.catalog() for name, target in built.targets.items()}
        return check_references(loaded.spec, catalogs, settings.sync.company_currency)
    except ConnectorError as exc:
        return [ReferenceProblem(exc.system, f"cannot read the catalogue: {exc.message}")]
    finally:
        db.dispose()
