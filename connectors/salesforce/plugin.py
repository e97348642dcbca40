"""The `salesforce` entry point of `billsync.connectors`: the deal source.

The field paths and write-back fields come from the loaded mapping (``source:`` and
``writeback:``); without a mapping the connector's defaults apply. With the ledger's
credential store in the context, the Salesforce session is kept there and reused by
the next run (``salesforce.session_reuse_s``) instead of logging in every time.
simple-salesforce is imported when the source is built, not when the configuration is
read; its error table (for ops advice, `advice`) when advice is first asked for.
"""

from __future__ import annotations

from datetime import UTC, datetime

from billsync.connectors.salesforce import advice
from billsync.connectors.salesforce.settings import CREDENTIAL_SHAPES, SalesforceSettings
from billsync.core.plugins import BuildContext, ConnectorParts, ConnectorSpec

__all__ = ["SPEC", "build", "cursor_at"]


def build(section: SalesforceSettings, context: BuildContext) -> ConnectorParts:
    from billsync.connectors.salesforce.fields import DealFieldPaths, WriteBackFields
    from billsync.connectors.salesforce.source import SalesforceDealSource

    field_paths = writeback_fields = None
    if context.mapping is not None:
        source_paths = context.mapping.section("source")
        writeback = context.mapping.section("writeback")
        field_paths = DealFieldPaths(**source_paths) if source_paths is not None else None
        writeback_fields = WriteBackFields(**writeback) if writeback is not None else None
    source = SalesforceDealSource(
        section,
        company_currency=context.company_currency,
        field_paths=field_paths,
        writeback_fields=writeback_fields,
        start_from=context.start_from or section.start_from,
        sleep=context.sleep,
    )
    if context.credentials is not None:
        source.client.use_credential_store(context.credentials)
    return ConnectorParts(source=source)


def _configured_urls(section: SalesforceSettings) -> tuple[str | None, ...]:
    return (section.instance_url, section.login_url)


def cursor_at(start: datetime) -> str:
    """A watermark at ``start`` with the lowest possible id: every deal stamped after it
    is read (how `--since`, `--backfill` and ``start_from`` begin)."""
    from billsync.connectors.salesforce.pull import encode_cursor

    return encode_cursor((start.replace(tzinfo=start.tzinfo or UTC), "0"))


SPEC = ConnectorSpec(
    name="salesforce",
    label="Salesforce",
    settings=SalesforceSettings,
    build=build,
    configured_urls=_configured_urls,
    public_hosts=(".salesforce.com", ".force.com"),
    secret_patterns=CREDENTIAL_SHAPES,
    error_rules=advice.error_rules,
    error_hints=advice.HINTS,
    cursor_at=cursor_at,
)
