"""`QboWebhookVerifier`: signatures on raw bytes, both payload shapes, every rejection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from billsync.connectors.quickbooks import QboWebhookVerifier
from billsync.connectors.quickbooks.webhooks import notification_facts
from billsync.core.protocols import (
    DescribesWebhookRequests,
    WebhookRejected,
    WebhookRejectReason,
    WebhookVerifier,
)

TOKEN = "verifier-token-for-tests-0001"
REALM = "9341453050298475"
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def sign(body: bytes, token: str = TOKEN) -> str:
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


def legacy(*entities: dict[str, Any], realm: str = REALM) -> bytes:
    payload = {
        "eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": list(entities)}}]
    }
    return json.dumps(payload).encode()


def cloud(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode()


PAYMENT = {
    "name": "Payment",
    "id": "145",
    "operation": "Create",
    "lastUpdated": "2026-11-02T09:59:58.000Z",
}
INVOICE_VOID = {
    "name": "Invoice",
    "id": "130",
    "operation": "Void",
    "lastUpdated": "2026-11-02T09:59:59.000Z",
}
CLOUD_PAYMENT = {
    "specversion": "1.0",
    "id": "e3a1c2d4-0000-4000-8000-000000000001",
    "source": "intuit.app",
    "type": "qbo.payment.created.v1",
    "datacontenttype": "application/json",
    "time": "2026-11-02T09:59:58.000Z",
    "intuitentityid": "145",
    "intuitaccountid": REALM,
    "data": {},
}


@pytest.fixture
def verifier() -> QboWebhookVerifier:
    return QboWebhookVerifier([TOKEN], REALM, clock=lambda: NOW)


def test_is_a_webhook_verifier(verifier: QboWebhookVerifier) -> None:
    assert isinstance(verifier, WebhookVerifier)
    assert verifier.provider == "quickbooks"
    # What the server checks and documents without naming Intuit.
    assert isinstance(verifier, DescribesWebhookRequests)
    assert verifier.headers == ("intuit-signature",)
    assert verifier.media_types == {"application/json"}
    assert TOKEN not in repr(verifier)


def test_legacy_payload_with_a_good_signature(verifier: QboWebhookVerifier) -> None:
    body = legacy(PAYMENT, INVOICE_VOID)
    notes = verifier.verify(body, {"Intuit-Signature": sign(body)})  # any header case
    assert [n.event_type for n in notes] == ["qbo.payment.created.v1", "qbo.invoice.voided.v1"]
    assert all(n.provider == "quickbooks" and n.received_at == NOW for n in notes)
    facts = notification_facts(notes[0])
    assert (facts.realm_id, facts.entity, facts.entity_id, facts.operation) == (
        REALM,
        "Payment",
        "145",
        "Create",
    )
    # No event id in the legacy shape: derived, deterministic, distinct per change.
    again = verifier.verify(body, {"intuit-signature": sign(body)})
    assert [n.event_id for n in again] == [n.event_id for n in notes]
    assert notes[0].event_id != notes[1].event_id
    assert notes[0].event_id.startswith("qbo-legacy-")


def test_cloudevents_payload_with_a_good_signature(verifier: QboWebhookVerifier) -> None:
    body = cloud(CLOUD_PAYMENT)
    [note] = verifier.verify(body, {"intuit-signature": sign(body)})
    assert note.event_id == CLOUD_PAYMENT["id"]
    assert note.event_type == "qbo.payment.created.v1"
    facts = notification_facts(note)
    assert (facts.entity, facts.entity_id, facts.operation) == ("Payment", "145", "Create")


@pytest.mark.parametrize("shape", [legacy(PAYMENT), cloud(CLOUD_PAYMENT)])
def test_bad_signatures_are_rejected(verifier: QboWebhookVerifier, shape: bytes) -> None:
    cases = {
        "another token": sign(shape, "someone-else"),
        "another body": sign(shape + b" "),
        "not base64": "%%%not-base64%%%",
        "short digest": base64.b64encode(b"\x00\x01\x02").decode(),
    }
    for name, signature in cases.items():
        with pytest.raises(WebhookRejected) as caught:
            verifier.verify(shape, {"intuit-signature": signature})
        assert caught.value.reason is WebhookRejectReason.BAD_SIGNATURE, name
        assert caught.value.http_status == 401
        assert TOKEN not in caught.value.message and signature not in caught.value.message


def test_missing_signature(verifier: QboWebhookVerifier) -> None:
    with pytest.raises(WebhookRejected) as caught:
        verifier.verify(legacy(PAYMENT), {"content-type": "application/json"})
    assert caught.value.reason is WebhookRejectReason.MISSING_SIGNATURE


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"something": "else"}',
        b'[{"type": "qbo.payment.created.v1"}]',
        b"42",
        b'[{"specversion": "1.0", "id": "x", "type": "other.thing", "time": "2026-11-02"}]',
    ],
)
def test_malformed_but_signed_bodies(verifier: QboWebhookVerifier, body: bytes) -> None:
    with pytest.raises(WebhookRejected) as caught:
        verifier.verify(body, {"intuit-signature": sign(body)})
    assert caught.value.reason is WebhookRejectReason.MALFORMED
    assert caught.value.http_status == 400


@pytest.mark.parametrize(
    "body",
    [legacy(PAYMENT, realm="1111"), cloud({**CLOUD_PAYMENT, "intuitaccountid": "1111"})],
    ids=["legacy", "cloudevents"],
)
def test_another_company_is_acknowledged_and_logged_not_refused(
    verifier: QboWebhookVerifier, body: bytes
) -> None:
    # Intuit retries a refused delivery and holds later events behind it: a company
    # this connection does not serve is answered 200 with nothing stored.
    with structlog.testing.capture_logs() as logs:
        assert verifier.verify(body, {"intuit-signature": sign(body)}) == []
    [logged] = logs
    assert logged["event"] == "quickbooks.webhook_other_realm"
    assert (logged["dropped"], logged["kept"], logged["realms"]) == (1, 0, ["1111"])


def test_a_mixed_delivery_keeps_ours(verifier: QboWebhookVerifier) -> None:
    other = {**CLOUD_PAYMENT, "id": "other", "intuitaccountid": "1111"}
    mixed = cloud(CLOUD_PAYMENT, other)
    assert [n.event_id for n in verifier.verify(mixed, {"intuit-signature": sign(mixed)})] == [
        CLOUD_PAYMENT["id"]
    ]


def test_one_apps_notifications_are_routed_to_the_connection_of_each_realm() -> None:
    """Intuit sends every realm of an app to one URL: the verifier of ``qbo_us`` keeps
    its realm's, names ``qbo_uk`` for the UK realm, and drops a realm nobody serves."""
    from billsync.connectors.quickbooks.settings import QuickBooksSettings

    uk = QuickBooksSettings(enabled=True, realm_id="2222", client_id="a", client_secret="s")
    us = QuickBooksSettings(
        enabled=True, realm_id=REALM, client_id="a", client_secret="s", verifier_token=TOKEN
    )
    verifier = QboWebhookVerifier.from_settings(us, name="qbo_us", peers={"qbo_uk": uk})
    events = [
        CLOUD_PAYMENT,
        {**CLOUD_PAYMENT, "id": "uk-1", "intuitaccountid": "2222"},
        {**CLOUD_PAYMENT, "id": "nobody-1", "intuitaccountid": "1111"},
    ]
    body = cloud(*events)
    with structlog.testing.capture_logs() as logs:
        notes = verifier.verify(body, {"intuit-signature": sign(body)})
    assert [(n.provider, n.event_id) for n in notes] == [
        ("qbo_us", CLOUD_PAYMENT["id"]),
        ("qbo_uk", "uk-1"),
    ]
    [logged] = logs
    assert (logged["connection"], logged["realms"], logged["kept"]) == ("qbo_us", ["1111"], 2)
    assert verifier.provider == "qbo_us"


def test_another_company_is_still_checked_for_a_signature(verifier: QboWebhookVerifier) -> None:
    body = legacy(PAYMENT, realm="1111")
    with pytest.raises(WebhookRejected) as caught:
        verifier.verify(body, {"intuit-signature": sign(body, "someone-else")})
    assert caught.value.reason is WebhookRejectReason.BAD_SIGNATURE


def test_the_signature_is_checked_before_parsing(verifier: QboWebhookVerifier) -> None:
    with pytest.raises(WebhookRejected) as caught:
        verifier.verify(b"{not json", {"intuit-signature": sign(b"other")})
    assert caught.value.reason is WebhookRejectReason.BAD_SIGNATURE


def test_token_rotation_accepts_either_token() -> None:
    verifier = QboWebhookVerifier(["old-token-000001", TOKEN], REALM)
    body = legacy(PAYMENT)
    assert verifier.verify(body, {"intuit-signature": sign(body, "old-token-000001")})
    assert verifier.verify(body, {"intuit-signature": sign(body)})


def test_no_token_configured_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="verifier_token"):
        QboWebhookVerifier([""], REALM)
