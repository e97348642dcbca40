"""The ``ledgerly`` entry point of ``billsync.connectors``: everything vendor-shaped
billsync needs from this connector, declared once (`SPEC`).

billsync builds one set of parts per Ledgerly *connection*: the plain ``ledgerly:``
section (connection ``ledgerly``) and each ``connections.<name>`` with ``kind: ledgerly``.
The parts name themselves by the connection (``context.connection_or("ledgerly")``), so
two Ledgerly accounts never share ledger rows, cursors or webhook routes.
"""

from __future__ import annotations

from collections.abc import Iterator

from billsync.core.plugins import (
    BuildContext,
    ConnectorParts,
    ConnectorSpec,
    ErrorHint,
    plugin_problem,
)
from billsync.core.protocols import ErrorRule
from billsync_ledgerly.health import HEALTH
from billsync_ledgerly.mapping import MAPPING
from billsync_ledgerly.settings import CREDENTIAL_SHAPES, LedgerlySettings

__all__ = ["SPEC", "build"]

KIND = "ledgerly"


def build(section: LedgerlySettings, context: BuildContext) -> ConnectorParts:
    # Imported here: reading the configuration loads every installed spec, and must not
    # pay for the client's imports when Ledgerly is not used.
    from billsync_ledgerly.actions import LedgerlyTarget
    from billsync_ledgerly.client import LedgerlyClient
    from billsync_ledgerly.feed import LedgerlyFeed
    from billsync_ledgerly.webhooks import LedgerlyWebhookVerifier

    if not section.enabled:
        raise plugin_problem(
            context.setting(KIND, "enabled"),
            "sync.targets names this Ledgerly connection but it is not enabled: set "
            f"{context.setting(KIND, 'enabled')}: true (and api_key) or remove it from "
            "sync.targets",
        )
    connection = context.connection_or(KIND)
    client = LedgerlyClient(
        section, connection=connection, credentials=context.credentials, sleep=context.sleep
    )
    verifier = None
    if section.webhook_secrets:  # no secret, no verifier: never accept unsigned requests
        verifier = LedgerlyWebhookVerifier(
            connection,
            section.webhook_secrets,
            tolerance_s=section.webhook_tolerance_s,
            max_body_bytes=context.max_body_bytes,
        )
    return ConnectorParts(
        target=LedgerlyTarget(client), feed=LedgerlyFeed(client), webhooks=verifier
    )


def error_rules() -> Iterator[tuple[str | None, ErrorRule]]:
    """The error table's rows by Ledgerly error code, for ops advice."""
    from billsync_ledgerly.client import ERRORS

    yield from ((row.code, row.rule) for row in ERRORS)


def _configured_urls(section: LedgerlySettings) -> tuple[str | None, ...]:
    return (section.base_url,)


HINTS = (
    ErrorHint(
        "unknown_catalog_code",
        "Ledgerly has no catalog item '{code}' (deal {deal_id})",
        patterns=(r"catalog code '(?P<code>[^']+)'",),
    ),
    ErrorHint("unknown_catalog_code", "a line of deal {deal_id} names a missing catalog item"),
    ErrorHint("idempotency_conflict", "Ledgerly saw this deal's idempotency key with other values"),
)

SPEC = ConnectorSpec(
    name=KIND,
    label="Ledgerly",
    settings=LedgerlySettings,
    build=build,
    configured_urls=_configured_urls,
    public_hosts=("api.ledgerly.example",),
    secret_patterns=CREDENTIAL_SHAPES,
    error_rules=error_rules,
    error_hints=HINTS,
    credential_health=HEALTH,
    mapping=MAPPING,
)
