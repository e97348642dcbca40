"""The connector's pure parts, table by table: the error table, the webhook check, the
health report; and the session the client keeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from billsync_ledgerly.client import LedgerlyClient, classify
from billsync_ledgerly.health import report
from billsync_ledgerly.settings import LedgerlySettings
from billsync_ledgerly.webhooks import SIGNATURE_HEADER, LedgerlyWebhookVerifier, sign
from conftest import MemoryCredentials
from fake_ledgerly import API_KEY, FakeLedgerly
from pydantic import SecretStr

from billsync.core.logs import SecretScrubber
from billsync.core.plugins import StoredCredential
from billsync.core.protocols import ErrorClass, WebhookRejected, WebhookRejectReason

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _response(
    status: int, body: object, headers: dict[str, str] | None = None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if body is not None else b"<html>oops</html>"
    response.headers.update(headers or {})
    return response


@pytest.mark.parametrize(
    ("status", "code", "headers", "error_class", "retry_after"),
    [
        (401, "invalid_api_key", {}, ErrorClass.AUTH, None),
        (401, "api_key_expired", {}, ErrorClass.AUTH, None),
        (403, "forbidden", {}, ErrorClass.AUTH, None),
        (404, "not_found", {}, ErrorClass.NOT_FOUND, None),
        (409, "idempotency_conflict", {}, ErrorClass.INVALID_DATA, None),
        (422, "unknown_catalog_code", {}, ErrorClass.INVALID_DATA, None),
        (422, "validation_error", {}, ErrorClass.INVALID_DATA, None),
        (429, "rate_limited", {"Retry-After": "7"}, ErrorClass.RATE_LIMITED, 7),
        (503, None, {}, ErrorClass.TRANSIENT, None),
        (507, None, {}, ErrorClass.TRANSIENT, None),  # any other 5xx
        (418, None, {}, ErrorClass.INVALID_DATA, None),  # any other 4xx
    ],
)
def test_error_table(
    status: int, code: str | None, headers: dict[str, str], error_class: ErrorClass,
    retry_after: int | None,
) -> None:  # fmt: skip
    body = {"error": {"code": code, "message": f"bad {API_KEY}"}} if code else None
    error = classify(
        _response(status, body, headers),
        system="ledgerly",
        operation="create invoice",
        scrub=SecretScrubber([API_KEY]),
    )
    assert error.error_class is error_class
    assert error.retry_after == (None if retry_after is None else timedelta(seconds=retry_after))
    assert API_KEY not in str(error) and " — " in error.message


SECRET = "lywh_" + "a" * 24
BODY = b'{"id": "evt_1", "type": "payment.created", "data": {}}'
STAMP = int(NOW.timestamp())


def _verifier(*secrets: str) -> LedgerlyWebhookVerifier:
    return LedgerlyWebhookVerifier(
        "ledgerly_eu",
        [SecretStr(s) for s in secrets],
        tolerance_s=300,
        max_body_bytes=1024,
        clock=lambda: float(STAMP),
    )


def _signed(secret: str, stamp: int = STAMP, body: bytes = BODY) -> dict[str, str]:
    return {SIGNATURE_HEADER.lower(): f"t={stamp},v1={sign(secret, stamp, body)}"}


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (BODY, {}, WebhookRejectReason.MISSING_SIGNATURE),
        (BODY, {SIGNATURE_HEADER: "v1=abc"}, WebhookRejectReason.MALFORMED),
        (BODY, _signed(SECRET, STAMP - 301), WebhookRejectReason.STALE),
        (BODY + b" ", _signed(SECRET), WebhookRejectReason.BAD_SIGNATURE),
        (BODY, _signed("lywh_" + "b" * 24), WebhookRejectReason.BAD_SIGNATURE),
        (b"x" * 1025, _signed(SECRET, body=b"x" * 1025), WebhookRejectReason.TOO_LARGE),
        (b"[]", _signed(SECRET, body=b"[]"), WebhookRejectReason.MALFORMED),
    ],
)
def test_webhook_rejections(
    body: bytes, headers: dict[str, str], reason: WebhookRejectReason
) -> None:
    with pytest.raises(WebhookRejected) as caught:
        _verifier(SECRET).verify(body, headers)
    assert caught.value.reason is reason


def test_webhook_signed_with_either_secret_during_a_rotation_names_the_connection() -> None:
    old, new = SECRET, "lywh_" + "n" * 24
    for secret in (old, new):
        [note] = _verifier(old, new).verify(BODY, _signed(secret))
        assert (note.provider, note.event_id, note.event_type) == (
            "ledgerly_eu",
            "evt_1",
            "payment.created",
        )


@pytest.mark.parametrize(
    ("key_expires_in", "warned"),
    [(timedelta(days=60), False), (timedelta(days=10), True), (timedelta(days=-1), True)],
)
def test_health_report(key_expires_in: timedelta, warned: bool) -> None:
    data = {
        "token": "lys_" + "t" * 32,
        "expires_at": (NOW + timedelta(minutes=30)).isoformat(),
        "key_expires_at": (NOW + key_expires_in).isoformat(),
    }
    said = report(StoredCredential("ledgerly:ledgerly_eu", data, NOW), NOW)
    assert said.account == "ledgerly_eu"
    assert said.summary.startswith("session valid yes")
    assert bool(said.warnings) is warned
    assert data["token"] not in json.dumps([said.facts, said.summary, said.warnings])


def test_a_session_ended_early_is_reopened_and_the_request_repeated(fake: FakeLedgerly) -> None:
    settings = LedgerlySettings(enabled=True, api_key=SecretStr(API_KEY), base_url=fake.url)
    store, sleeps = MemoryCredentials(), list[float]()
    client = LedgerlyClient(settings, connection="ledgerly", credentials=store, sleep=sleeps.append)
    client.get("read catalog", "/v1/catalog")
    first = store.rows["ledgerly:ledgerly"][0]["token"]
    fake.expire_sessions()
    client.get("read catalog", "/v1/catalog")
    assert store.rows["ledgerly:ledgerly"][0]["token"] != first
    assert API_KEY not in json.dumps(store.rows)  # only a fingerprint of the key
    assert fake.calls.count("POST /v1/sessions") == 2
