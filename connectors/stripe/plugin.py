"""The `stripe` entry point of `billsync.connectors`: invoice target, payment feed and
webhook verifier sharing one client (and so one rate limit).

The verifier exists only when ``stripe.webhook_secrets`` is set; it refuses bodies
larger than ``server.max_body_bytes``, like the receiver itself.
"""

from __future__ import annotations

from billsync.config.settings import Settings
from billsync.connectors.stripe import connect
from billsync.core.plugins import BuildContext, ConnectorParts, plugin_problem

__all__ = ["build"]


def build(settings: Settings, context: BuildContext) -> ConnectorParts:
    section = settings.stripe
    if not section.enabled:
        raise plugin_problem(
            "stripe.enabled",
            "sync.targets names stripe but its section is not enabled: "
            "set stripe.enabled: true (and stripe.api_key) or remove it from sync.targets",
        )
    stripe = connect(section, sleep=context.sleep, max_body_bytes=settings.server.max_body_bytes)
    return ConnectorParts(target=stripe.target, feed=stripe.feed, webhooks=stripe.webhooks)
