"""The `salesforce` entry point of `billsync.connectors`: the deal source.

The field paths and write-back fields come from the loaded mapping (``source:`` and
``writeback:``); without a mapping the connector's defaults apply. With the ledger's
credential store in the context, the Salesforce session is kept there and reused by
the next run (``salesforce.session_reuse_s``) instead of logging in every time.
"""

from __future__ import annotations

from billsync.config.settings import Settings
from billsync.connectors.salesforce.fields import DealFieldPaths, WriteBackFields
from billsync.connectors.salesforce.source import SalesforceDealSource
from billsync.core.plugins import BuildContext, ConnectorParts

__all__ = ["build"]


def build(settings: Settings, context: BuildContext) -> ConnectorParts:
    field_paths = writeback_fields = None
    if context.mapping is not None:
        spec = context.mapping.spec
        field_paths = DealFieldPaths(**spec.source.model_dump())
        writeback_fields = WriteBackFields(**spec.writeback.model_dump())
    source = SalesforceDealSource(
        settings.salesforce,
        company_currency=settings.sync.company_currency,
        field_paths=field_paths,
        writeback_fields=writeback_fields,
        start_from=settings.sync.start_from or settings.salesforce.start_from,
        sleep=context.sleep,
    )
    if context.credentials is not None:
        source.client.use_credential_store(context.credentials)
    return ConnectorParts(source=source)
