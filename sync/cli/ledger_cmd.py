"""`billsync migrate`: bring the ledger schema to the current version."""

from __future__ import annotations

import typer

from billsync.sync.cli.options import ConfigOption, settings_for


def migrate(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Create or upgrade the ledger schema (Alembic migrations) and print its revision."""
    from billsync.sync.ledger.database import create_ledger_engine
    from billsync.sync.ledger.migrate import current_revision, upgrade_to_head

    settings = settings_for(ctx, config)
    engine = create_ledger_engine(settings.ledger.url)
    try:
        upgrade_to_head(engine)
        typer.echo(f"ledger at revision {current_revision(engine)}")
    finally:
        engine.dispose()
