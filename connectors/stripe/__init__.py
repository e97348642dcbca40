"""Stripe connector: invoice target and payment feed (stripe-python 16, `StripeClient`).

Only this package imports ``stripe``. The modules:
- ``client``: the SDK client, retries, the error table (``ratelimit``: the request budget);
- ``amounts``: canonical Decimals ⇄ Stripe integer amounts; ``convert``: Stripe JSON ⇄
  canonical models; ``lines``: draft lines as exact ``add_lines`` entries;
- ``catalog`` (`TargetCatalog`), ``customers``, ``lookup`` (invoices read back) and
  ``actions`` (`StripeTarget`, the `InvoiceTarget`: invoices exactly once);
- ``events`` (which invoice each event hints at), ``money`` (an invoice's money read
  fresh), ``feed`` (`StripeFeed`, the
  `PaymentFeed`) and ``webhooks`` (`StripeWebhookVerifier`, the `WebhookVerifier`).
`connect` wires the target, the feed and the verifier from settings around one client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import requests

from billsync.connectors.stripe.actions import StripeTarget
from billsync.connectors.stripe.catalog import StripeCatalog
from billsync.connectors.stripe.client import StripeApi
from billsync.connectors.stripe.feed import StripeFeed
from billsync.connectors.stripe.settings import StripeSettings
from billsync.connectors.stripe.webhooks import StripeWebhookVerifier

if TYPE_CHECKING:
    from billsync.core.catalog import TargetCatalog
    from billsync.core.protocols import InvoiceTarget, PaymentFeed, WebhookVerifier

    def _meets_the_protocols(
        t: StripeTarget, f: StripeFeed, w: StripeWebhookVerifier, c: StripeCatalog
    ) -> tuple[InvoiceTarget, PaymentFeed, WebhookVerifier, TargetCatalog]:
        return t, f, w, c  # mypy checks the structural match here


__all__ = [
    "StripeApi",
    "StripeCatalog",
    "StripeConnector",
    "StripeFeed",
    "StripeTarget",
    "StripeWebhookVerifier",
    "connect",
]


@dataclass(frozen=True)
class StripeConnector:
    api: StripeApi
    target: StripeTarget
    feed: StripeFeed
    webhooks: StripeWebhookVerifier | None  # None when no webhook secret is configured


def connect(
    settings: StripeSettings,
    *,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] | None = None,
    now: Callable[[], datetime] | None = None,
    max_body_bytes: int | None = None,
    name: str = "stripe",
) -> StripeConnector:
    """The Stripe target, feed and webhook verifier sharing one client (and so one rate
    limit), all named by the connection ``name``. ``session``, ``sleep`` and ``now``
    are for tests."""
    api = StripeApi(settings, session=session, sleep=sleep, connection=name)
    verifier = None
    if settings.webhook_secrets:
        verifier = StripeWebhookVerifier(
            settings.webhook_secrets,
            api_version=api.api_version,
            tolerance_s=settings.webhook_tolerance_s,
            max_body_bytes=max_body_bytes,
            now=now,
            name=name,
        )
    return StripeConnector(
        api=api,
        target=StripeTarget(api, now=now, name=name),
        feed=StripeFeed(api, now=now, name=name),
        webhooks=verifier,
    )
