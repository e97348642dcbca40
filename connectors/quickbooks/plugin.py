"""The `quickbooks` entry point of `billsync.connectors`: invoice target, payment feed
and webhook verifier for one QuickBooks Online company.

Refresh tokens rotate, so the connector needs the ledger's credential store from the
context; the verifier exists only when ``quickbooks.verifier_token`` is set (it refuses
to run without one rather than accept unsigned webhooks). The connector itself (and
python-quickbooks) is imported when it is built, not when the configuration is read.

Besides its parts it declares its error table and hints for ops advice (`advice`), each
company's token health for `billsync status` (`health`) and `billsync auth quickbooks`
(`cli`, imported with typer only when the command line is built).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from billsync.connectors.quickbooks import advice, mapping
from billsync.connectors.quickbooks.health import HEALTH
from billsync.connectors.quickbooks.settings import CREDENTIAL_SHAPES, QuickBooksSettings
from billsync.core.plugins import (
    BuildContext,
    CommandOpener,
    ConnectorParts,
    ConnectorSpec,
    plugin_problem,
)

if TYPE_CHECKING:
    import typer

__all__ = ["SPEC", "build"]


def build(section: QuickBooksSettings, context: BuildContext) -> ConnectorParts:
    from billsync.connectors.quickbooks.connector import QuickBooksConnector
    from billsync.connectors.quickbooks.webhooks import QboWebhookVerifier

    name = context.connection_or("quickbooks")
    if not section.enabled:
        key = context.setting("quickbooks", "enabled")
        raise plugin_problem(
            key,
            f"sync.targets names {name} but it is not enabled: "
            f"set {key}: true (and its credentials) or remove it from sync.targets",
        )
    if context.credentials is None:
        raise ValueError("the QuickBooks connector needs the ledger's credential store")
    connector = QuickBooksConnector(
        section, context.credentials, sleep=context.sleep or time.sleep, name=name
    )
    verifier = None
    if section.verifier_token:
        verifier = QboWebhookVerifier.from_settings(section, name=name, peers=context.peers)
    return ConnectorParts(target=connector, feed=connector, webhooks=verifier)


def _configured_urls(section: QuickBooksSettings) -> tuple[str | None, ...]:
    return (section.base_url, section.discovery_url)


def _cli(open_command: CommandOpener) -> typer.Typer:
    from billsync.connectors.quickbooks.cli import build_cli

    return build_cli(open_command)


SPEC = ConnectorSpec(
    name="quickbooks",
    label="QuickBooks",
    settings=QuickBooksSettings,
    build=build,
    configured_urls=_configured_urls,
    public_hosts=(".intuit.com",),
    secret_patterns=CREDENTIAL_SHAPES,
    error_rules=advice.error_rules,
    error_hints=advice.HINTS,
    credential_health=HEALTH,
    cli=_cli,
    # The company (realm) a connection's rows belong to; the ledger pins it.
    account=lambda section: section.realm_id,
    mapping=mapping.MAPPING,
)
