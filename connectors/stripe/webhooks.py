"""Stripe webhook verification on the raw bytes (api-facts §3.7).

``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]``; the expected value is the hex
HMAC-SHA256 of ``"{t}.{raw body}"`` keyed with an endpoint secret. Any v1 may match any
configured secret (rotation: Stripe signs with the old and the new secret for a while,
and we may list both). Compared in constant time. The timestamp must be within the
tolerance (300 s by default) of now, in either direction, after the signature matched,
so a stale but genuine request and a forged one are told apart. The check cannot be
switched off: there is no tolerance 0 and no empty secret list.

Stripe renders a webhook with the *endpoint's* API version, not the one billsync sends
(api-facts §3.1). An event in another version would be read with the wrong field names
(e.g. a pre-basil ``invoice.charge``), so it is refused with a message saying which
setting to change, and nothing is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from pydantic import SecretStr, ValidationError

from billsync.core.canonical import WebhookNotification
from billsync.core.protocols import WebhookRejected, WebhookRejectReason

__all__ = ["StripeWebhookVerifier"]

_HEADER = "stripe-signature"

# Stripe's own webhook examples answer every failed check with 400 (the endpoint then
# shows the failure in the Dashboard and Stripe retries); only the size limit keeps 413.
_STRIPE_STATUS = 400


def _rejected(reason: WebhookRejectReason, message: str) -> WebhookRejected:
    status = None if reason is WebhookRejectReason.TOO_LARGE else _STRIPE_STATUS
    return WebhookRejected(reason, message, http_status=status)


class StripeWebhookVerifier:
    """`WebhookVerifier` (and `DescribesWebhookRequests`) for Stripe. Holds the secrets;
    its repr never shows them."""

    headers = ("Stripe-Signature",)
    # Stripe sends "application/json; charset=utf-8".
    media_types = frozenset({"application/json"})

    def __init__(
        self,
        secrets: Sequence[SecretStr | str],
        *,
        api_version: str,
        tolerance_s: int = 300,
        max_body_bytes: int | None = None,
        now: Callable[[], datetime] | None = None,
        name: str = "stripe",
    ) -> None:
        # Stripe sends each account's events to that account's own endpoints, so what
        # this verifier accepts is its connection's (named ``name``), never a peer's.
        self._name = name
        keys = [s.get_secret_value() if isinstance(s, SecretStr) else s for s in secrets]
        self._keys = [k.encode() for k in keys if k]
        if not self._keys:
            raise ValueError("a Stripe webhook verifier needs at least one endpoint secret")
        if tolerance_s <= 0:
            raise ValueError("the timestamp tolerance must be positive")
        self._api_version = api_version
        self._tolerance = tolerance_s
        self._max_body = max_body_bytes
        self._now = now or (lambda: datetime.now(UTC))

    @property
    def provider(self) -> str:
        return self._name

    def __repr__(self) -> str:
        shown = f"secrets={len(self._keys)}, api_version={self._api_version!r}"
        return f"StripeWebhookVerifier({shown})"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> list[WebhookNotification]:
        if self._max_body is not None and len(body) > self._max_body:
            raise _rejected(WebhookRejectReason.TOO_LARGE, f"body over {self._max_body} bytes")
        header = next((v for k, v in headers.items() if k.lower() == _HEADER), None)
        if not header:
            raise _rejected(WebhookRejectReason.MISSING_SIGNATURE, "no Stripe-Signature header")
        timestamp, signatures = _parse(header)
        signed = f"{timestamp}.".encode() + body
        expected = [hmac.new(key, signed, hashlib.sha256).hexdigest() for key in self._keys]
        matched = False
        for candidate in signatures:
            for value in expected:  # every pair, no early exit on the secret
                matched |= hmac.compare_digest(candidate.encode(), value.encode())
        if not matched:
            raise _rejected(
                WebhookRejectReason.BAD_SIGNATURE,
                "no v1 signature matches a configured endpoint secret "
                "(check stripe.webhook_secrets against the endpoint's signing secret)",
            )
        age = int(self._now().timestamp()) - timestamp
        if abs(age) > self._tolerance:
            raise _rejected(
                WebhookRejectReason.STALE,
                f"signature timestamp is {age} s from now, outside ±{self._tolerance} s "
                "(a replayed request, or a clock out of sync)",
            )
        return [self._notification(body)]

    def _notification(self, body: bytes) -> WebhookNotification:
        try:
            text = body.decode("utf-8")
            event = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting: not an event
            raise _rejected(WebhookRejectReason.MALFORMED, "body is not UTF-8 JSON") from None
        if not isinstance(event, dict) or event.get("object") != "event":
            raise _rejected(WebhookRejectReason.MALFORMED, "body is not a Stripe event")
        version = event.get("api_version")
        if version != self._api_version:
            raise _rejected(
                WebhookRejectReason.MALFORMED,
                f"event {event.get('id')} was rendered with Stripe API version {version}, "
                f"billsync reads {self._api_version}: set the webhook endpoint's API version "
                f"to {self._api_version} in the Stripe Dashboard (Developers → Webhooks), "
                "or change stripe.api_version to match. Missed events are caught up from "
                "GET /v1/events once the versions agree",
            )
        try:
            return WebhookNotification(
                provider=self._name,
                event_id=str(event.get("id") or ""),
                event_type=str(event.get("type") or ""),
                payload=text,
                received_at=self._now(),
            )
        except ValidationError:
            raise _rejected(WebhookRejectReason.MALFORMED, "event has no id or type") from None


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        # isdigit() alone admits "²" (Latin-1 headers carry it), which int() refuses.
        if name == "t" and value.isascii() and value.isdigit() and timestamp is None:
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise _rejected(
            WebhookRejectReason.BAD_SIGNATURE,
            "Stripe-Signature has no timestamp or no v1 signature",
        )
    return timestamp, signatures
