"""The `stripe` entry point of `billsync.connectors`: invoice target, payment feed and
webhook verifier sharing one client (and so one rate limit).

The verifier exists only when ``stripe.webhook_secrets`` is set; it refuses bodies
larger than ``server.max_body_bytes``, like the receiver itself. stripe-python is
imported when the connector is built, not when the configuration is read; its error
table (for ops advice, `advice`) when advice is first asked for.
"""

from __future__ import annotations

from billsync.connectors.stripe import advice, mapping
from billsync.connectors.stripe.settings import CREDENTIAL_SHAPES, StripeSettings
from billsync.core.plugins import BuildContext, ConnectorParts, ConnectorSpec, plugin_problem

__all__ = ["SPEC", "build"]


def build(section: StripeSettings, context: BuildContext) -> ConnectorParts:
    from billsync.connectors.stripe import connect

    if not section.enabled:
        key = context.setting("stripe", "enabled")
        raise plugin_problem(
            key,
            f"sync.targets names {context.connection_or('stripe')} but it is not enabled: "
            f"set {key}: true (and its api_key) or remove it from sync.targets",
        )
    stripe = connect(
        section,
        sleep=context.sleep,
        max_body_bytes=context.max_body_bytes,
        name=context.connection_or("stripe"),
    )
    return ConnectorParts(target=stripe.target, feed=stripe.feed, webhooks=stripe.webhooks)


def _configured_urls(section: StripeSettings) -> tuple[str | None, ...]:
    return (section.base_url,)


SPEC = ConnectorSpec(
    name="stripe",
    label="Stripe",
    settings=StripeSettings,
    build=build,
    configured_urls=_configured_urls,
    public_hosts=("api.stripe.com",),
    secret_patterns=CREDENTIAL_SHAPES,
    error_rules=advice.error_rules,
    error_hints=advice.HINTS,
    mapping=mapping.MAPPING,
)
