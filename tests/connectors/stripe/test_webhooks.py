"""Webhook verification: one test per way a request can be wrong (STYLE.md 6)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import stripe
from pydantic import SecretStr

from billsync.connectors.stripe.webhooks import StripeWebhookVerifier
from billsync.core.protocols import (
    DescribesWebhookRequests,
    WebhookRejected,
    WebhookRejectReason,
    WebhookVerifier,
)

SECRET = "whsec_current0123456789abcdef"
OLD = "whsec_previous0123456789abcdef"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
VERSION = stripe.api_version
EVENT = {
    "id": "evt_1",
    "object": "event",
    "api_version": VERSION,
    "created": int(NOW.timestamp()),
    "type": "invoice.paid",
    "data": {"object": {"id": "in_1", "object": "invoice"}},
}


def body(**changes: object) -> bytes:
    return json.dumps({**EVENT, **changes}).encode()


def sign(raw: bytes, secret: str = SECRET, at: datetime = NOW) -> str:
    stamp = int(at.timestamp())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def verifier(*secrets: str, now: datetime = NOW) -> StripeWebhookVerifier:
    return StripeWebhookVerifier(
        [SecretStr(s) for s in (secrets or (SECRET,))],
        api_version=VERSION,
        max_body_bytes=10_000,
        now=lambda: now,
    )


def rejected(
    raw: bytes, headers: dict[str, str], check: StripeWebhookVerifier | None = None
) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        (check or verifier()).verify(raw, headers)
    for secret in (SECRET, OLD):
        assert secret not in caught.value.message
    return caught.value


def test_describes_what_stripe_sends() -> None:
    # What the server checks and documents without naming Stripe.
    check = verifier()
    assert isinstance(check, WebhookVerifier) and isinstance(check, DescribesWebhookRequests)
    assert check.headers == ("Stripe-Signature",)
    assert check.media_types == {"application/json"}


def test_a_valid_event_becomes_one_notification() -> None:
    raw = body()
    [note] = verifier().verify(raw, {"Stripe-Signature": sign(raw)})
    assert (note.provider, note.event_id, note.event_type) == ("stripe", "evt_1", "invoice.paid")
    assert note.payload == raw.decode() and note.received_at == NOW


def test_the_sdks_own_signature_header_verifies() -> None:
    raw = body()
    header = stripe.WebhookSignature.generate_signature_header(
        raw.decode(), SECRET, timestamp=int(NOW.timestamp())
    )
    assert verifier().verify(raw, {"stripe-signature": header})


def test_two_signatures_one_valid_passes() -> None:
    raw = body()
    good = sign(raw).split("v1=")[1]
    header = f"t={int(NOW.timestamp())},v1={'0' * 64},v1={good},v0=deadbeef"
    assert verifier().verify(raw, {"STRIPE-SIGNATURE": header})


def test_rotation_any_configured_secret_passes() -> None:
    raw = body()
    assert verifier(OLD, SECRET).verify(raw, {"Stripe-Signature": sign(raw, OLD)})
    assert verifier(OLD, SECRET).verify(raw, {"Stripe-Signature": sign(raw, SECRET)})


def test_wrong_secret() -> None:
    raw = body()
    error = rejected(raw, {"Stripe-Signature": sign(raw, "whsec_someoneelse")})
    assert error.reason is WebhookRejectReason.BAD_SIGNATURE and error.http_status == 400


def test_tampered_body() -> None:
    raw = body()
    error = rejected(body(type="invoice.voided"), {"Stripe-Signature": sign(raw)})
    assert error.reason is WebhookRejectReason.BAD_SIGNATURE


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_or_future_timestamp(offset: int) -> None:
    raw = body()
    at = NOW + timedelta(seconds=offset)
    error = rejected(raw, {"Stripe-Signature": sign(raw, at=at)})
    assert error.reason is WebhookRejectReason.STALE and error.http_status == 400


def test_within_tolerance_passes() -> None:
    raw = body()
    assert verifier().verify(raw, {"Stripe-Signature": sign(raw, at=NOW - timedelta(seconds=299))})


def test_missing_and_malformed_headers() -> None:
    raw = body()
    assert rejected(raw, {}).reason is WebhookRejectReason.MISSING_SIGNATURE
    assert rejected(raw, {"Stripe-Signature": "v1=abc"}).reason is WebhookRejectReason.BAD_SIGNATURE
    stamp_only = f"t={int(NOW.timestamp())}"
    assert (
        rejected(raw, {"Stripe-Signature": stamp_only}).reason is WebhookRejectReason.BAD_SIGNATURE
    )


def test_api_version_mismatch_is_refused_with_the_fix() -> None:
    raw = body(api_version="2024-06-20")
    error = rejected(raw, {"Stripe-Signature": sign(raw)})
    assert error.reason is WebhookRejectReason.MALFORMED and error.http_status == 400
    assert "2024-06-20" in error.message and VERSION in error.message
    assert "webhook endpoint's API version" in error.message


def test_signed_but_not_an_event() -> None:
    for raw in (b"\xff\xfe", b"[1, 2]", json.dumps({"id": "evt_1"}).encode()):
        error = rejected(raw, {"Stripe-Signature": sign(raw)})
        assert error.reason is WebhookRejectReason.MALFORMED


def test_too_large() -> None:
    raw = body(padding="x" * 20_000)
    assert rejected(raw, {"Stripe-Signature": sign(raw)}).reason is WebhookRejectReason.TOO_LARGE


def test_secrets_never_shown_and_the_check_cannot_be_disabled() -> None:
    check = verifier(OLD, SECRET)
    assert SECRET not in repr(check) and OLD not in repr(check)
    with pytest.raises(ValueError):
        StripeWebhookVerifier([], api_version=VERSION)
    with pytest.raises(ValueError):
        StripeWebhookVerifier([SECRET], api_version=VERSION, tolerance_s=0)
