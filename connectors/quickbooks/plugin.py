"""The `quickbooks` entry point of `billsync.connectors`: invoice target, payment feed
and webhook verifier for one QuickBooks Online company.

Refresh tokens rotate, so the connector needs the ledger's credential store from the
context; the verifier exists only when ``quickbooks.verifier_token`` is set (it refuses
to run without one rather than accept unsigned webhooks). The connector itself (and
python-quickbooks) is imported when it is built, not when the configuration is read.
"""

from __future__ import annotations

import time

from billsync.connectors.quickbooks.settings import CREDENTIAL_SHAPES, QuickBooksSettings
from billsync.core.plugins import BuildContext, ConnectorParts, ConnectorSpec, plugin_problem

__all__ = ["SPEC", "build"]


def build(section: QuickBooksSettings, context: BuildContext) -> ConnectorParts:
    from billsync.connectors.quickbooks.connector import QuickBooksConnector
    from billsync.connectors.quickbooks.webhooks import QboWebhookVerifier

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


def _configured_urls(section: QuickBooksSettings) -> tuple[str | None, ...]:
    return (section.base_url, section.discovery_url)


SPEC = ConnectorSpec(
    name="quickbooks",
    label="QuickBooks Online",
    settings=QuickBooksSettings,
    build=build,
    configured_urls=_configured_urls,
    public_hosts=(".intuit.com",),
    secret_patterns=CREDENTIAL_SHAPES,
)
