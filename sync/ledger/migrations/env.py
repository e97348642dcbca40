"""Alembic environment for the ledger.

Normally run through ``billsync.sync.ledger.migrate``, which passes an open connection in
``config.attributes["connection"]``. Without one (the ``alembic`` command line, for
writing new revisions) it opens ``sqlalchemy.url`` with the ledger's engine factory.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from billsync.sync.ledger.database import WRITE_OPTION, create_ledger_engine
from billsync.sync.ledger.schema import metadata

config = context.config


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Autogenerate should write the ledger's own types, as 0001 does by hand.
    module = getattr(type(obj), "__module__", "")
    if type_ == "type" and module == "billsync.sync.ledger.types":
        autogen_context.imports.add("from billsync.sync.ledger import types as lt")
        return f"lt.{type(obj).__name__}()"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "set sqlalchemy.url or run migrations through billsync.sync.ledger.migrate"
        )
    engine = create_ledger_engine(url)
    try:
        with engine.execution_options(**{WRITE_OPTION: True}).connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
