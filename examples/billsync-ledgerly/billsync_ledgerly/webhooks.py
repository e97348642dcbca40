"""The signature check of Ledgerly webhooks (served at ``POST /webhooks/<connection>``).

Ledgerly signs each request with HMAC-SHA256 over ``"<t>.<raw body>"`` and sends
``Ledgerly-Signature: t=<unix seconds>,v1=<hex>`` (one ``v1`` per active secret while a
secret is being rotated). The timestamp inside the signed text is what makes a replayed
request stale after ``webhook_tolerance_s``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from pydantic import SecretStr

from billsync.core.canonical import WebhookNotification
from billsync.core.protocols import WebhookRejected, WebhookRejectReason

__all__ = ["SIGNATURE_HEADER", "LedgerlyWebhookVerifier", "sign"]

SIGNATURE_HEADER = "Ledgerly-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` value Ledgerly sends (the fake API signs with this too)."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class LedgerlyWebhookVerifier:
    """`WebhookVerifier` and `DescribesWebhookRequests` for one Ledgerly account."""

    headers = (SIGNATURE_HEADER,)
    media_types = frozenset({"application/json"})

    def __init__(
        self,
        provider: str,
        secrets: Sequence[SecretStr],
        *,
        tolerance_s: int,
        max_body_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secrets:
            raise ValueError("a Ledgerly webhook verifier needs at least one signing secret")
        self._provider = provider
        self._secrets = tuple(secrets)
        self._tolerance_s = tolerance_s
        self._max_body_bytes = max_body_bytes
        self._clock = clock

    @property
    def provider(self) -> str:
        return self._provider

    def __repr__(self) -> str:
        return f"LedgerlyWebhookVerifier(provider={self._provider!r}, secrets={len(self._secrets)})"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Sequence[WebhookNotification]:
        if len(body) > self._max_body_bytes:
            raise WebhookRejected(WebhookRejectReason.TOO_LARGE, "webhook body too large")
        header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), "")
        if not header:
            raise WebhookRejected(
                WebhookRejectReason.MISSING_SIGNATURE, f"no {SIGNATURE_HEADER} header"
            )
        timestamp, signatures = _parse(header)
        if abs(self._clock() - timestamp) > self._tolerance_s:
            raise WebhookRejected(WebhookRejectReason.STALE, "signature timestamp out of range")
        wanted = [sign(s.get_secret_value(), timestamp, body) for s in self._secrets]
        if not any(hmac.compare_digest(w, got) for w in wanted for got in signatures):
            raise WebhookRejected(WebhookRejectReason.BAD_SIGNATURE, "signature does not match")
        try:
            event = json.loads(body)
            event_id, event_type = str(event["id"]), str(event["type"])
        except (ValueError, KeyError, TypeError):
            raise WebhookRejected(WebhookRejectReason.MALFORMED, "not a Ledgerly event") from None
        return [
            WebhookNotification(
                provider=self._provider,
                event_id=event_id,
                event_type=event_type,
                payload=body.decode(),
                received_at=datetime.now(UTC),
            )
        ]


def _parse(header: str) -> tuple[int, list[str]]:
    fields = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in fields if key == "t"]
    signatures = [value for key, _, value in fields if key == "v1" and value]
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        raise WebhookRejected(WebhookRejectReason.MALFORMED, f"unreadable {SIGNATURE_HEADER}")
    return int(stamps[0]), signatures
