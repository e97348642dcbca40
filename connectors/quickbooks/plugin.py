"""The `quickbooks` entry point of `billsync.connectors`: invoice target, payment feed
and webhook verifier for one QuickBooks Online company.

Refresh tokens rotate, so the connector needs the ledger's credential store from the
context; the verifier exists only when ``quickbooks.verifier_token`` is set (it refuses
to run without one rather than accept unsigned webhooks).
"""

from __future__ import annotations

import time

from billsync.config.settings import Settings
from billsync.connectors.quickbooks.connector import QuickBooksConnector
from billsync.connectors.quickbooks.webhooks import QboWebhookVerifier
from billsync.core.plugins import BuildContext, ConnectorParts, plugin_problem

__all__ = ["build"]


def build(settings: Settings, context: BuildContext) -> ConnectorParts:
    section = settings.quickbooks
    if not section.enabled:
        raise plugin_problem(
            "quickbooks.enabled",
            "sync.targets names quickbooks but its section is not enabled: "
            "set quickbooks.enabled: true (and its credentials) or remove it from sync.targets",
        )
    if context.credentials is None:
        raise ValueError("the QuickBooks connector needs the ledger's credential store")
    connector = QuickBooksConnector(section, context.credentials, sleep=context.sleep or time.sleep)
    verifier = QboWebhookVerifier.from_settings(section) if section.verifier_token else None
    return ConnectorParts(target=connector, feed=connector, webhooks=verifier)
