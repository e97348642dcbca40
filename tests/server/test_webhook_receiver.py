"""The webhook receiver on a live server (uvicorn on 127.0.0.1): the real Stripe and
Intuit verifiers, a real SQLite ledger, and a worker whose feeds are fakes (the
sandbox end-to-end test covers the real connectors).

Genuine events are stored once and applied once however often and in whatever order
they arrive; every refusal has its status and stores nothing; a body over the limit
is refused without being read whole; events stored before a restart are processed
after it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import random
import socket
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import stripe
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from billsync.connectors.quickbooks import QboWebhookVerifier
from billsync.connectors.stripe.webhooks import StripeWebhookVerifier
from billsync.core.canonical import InvoiceRef, PaymentEvent, WebhookNotification
from billsync.core.protocols import WebhookRejected, WebhookRejectReason
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from billsync.sync.ledger.schema import inbox
from billsync.sync.server.app import ServerParts, create_app
from billsync.sync.server.metrics import Metrics
from billsync.sync.server.worker import InboxWorker
from tests.engine.fakes import Clock, FakeFeed, FakeSource, FakeTarget, build
from tests.server.live import serving

STRIPE_SECRET = "whsec_receiver_test_0123456789"
QBO_TOKEN = "intuit-verifier-token-receiver-test"
REALM = "9341453050298475"
MAX_BODY = 1024 * 1024


# --- signed requests -------------------------------------------------------------


def stripe_event(event_id: str, invoice: str = "in_1", kind: str = "invoice.paid") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": stripe.api_version,
            "created": int(time.time()),
            "type": kind,
            "data": {"object": {"id": invoice, "object": "invoice"}},
        }
    ).encode()


def stripe_headers(body: bytes, secret: str = STRIPE_SECRET, at: float | None = None) -> dict:
    stamp = int(at if at is not None else time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"}


def intuit_headers(body: bytes, token: str = QBO_TOKEN) -> dict:
    digest = hmac.new(token.encode(), body, hashlib.sha256).digest()
    return {
        "intuit-signature": base64.b64encode(digest).decode(),
        "Content-Type": "application/json",
    }


def intuit_legacy(payment_id: str) -> bytes:
    entity = {
        "name": "Payment",
        "id": payment_id,
        "operation": "Create",
        "lastUpdated": "2026-11-23T09:59:58.000Z",
    }
    notification = {"realmId": REALM, "dataChangeEvent": {"entities": [entity]}}
    return json.dumps({"eventNotifications": [notification]}).encode()


def intuit_cloud(event_id: str, payment_id: str) -> bytes:
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "id": event_id,
                "source": "intuit.app",
                "type": "qbo.payment.created.v1",
                "datacontenttype": "application/json",
                "time": "2026-11-23T09:59:58.000Z",
                "intuitentityid": payment_id,
                "intuitaccountid": REALM,
                "data": {},
            }
        ]
    ).encode()


# --- the server under test ---------------------------------------------------------


@dataclasses.dataclass
class World:
    ledger: Ledger
    clock: Clock
    source: FakeSource
    feeds: dict[str, FakeFeed]
    metrics: Metrics
    tmp: Path

    def parts(self, *, worker: bool = True) -> ServerParts:
        engine = dataclasses.replace(
            build(self.ledger, self.source, FakeTarget(), self.clock), feeds=self.feeds
        )
        verifiers = {
            "stripe": StripeWebhookVerifier(
                [SecretStr(STRIPE_SECRET)], api_version=stripe.api_version
            ),
            "quickbooks": QboWebhookVerifier([QBO_TOKEN], REALM),
        }
        return ServerParts(
            ledger=self.ledger,
            verifiers=verifiers,
            metrics=self.metrics,
            max_body_bytes=MAX_BODY,
            worker=InboxWorker(engine, poll_seconds=0.2) if worker else None,
        )

    def inbox_rows(self) -> list[tuple[str, str, str]]:
        with self.ledger.engine.connect() as conn:
            rows = conn.execute(sa.select(inbox.c.provider, inbox.c.event_id, inbox.c.status))
            return sorted((r[0], r[1], r[2]) for r in rows)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    db = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade_to_head(db)
    clock = Clock()
    ledger = Ledger(db)
    books = {"stripe": FakeTarget("stripe"), "quickbooks": FakeTarget("quickbooks")}
    for target, external_id, deal in (("stripe", "in_1", "006A"), ("quickbooks", "130", "006B")):
        ledger.upsert_invoice(
            target=target,
            external_id=external_id,
            currency="USD",
            total=Decimal("100.00"),
            status="open",
            deal_id=deal,
        )
        books[target].invoices[external_id] = InvoiceRef(
            target=target,
            external_id=external_id,
            deal_id=deal,
            currency="USD",
            total=Decimal("100.00"),
            status="open",
        )
    # The targets' books (what read_invoice_money reads); events are hints.
    feeds = {name: FakeFeed(name, target=book) for name, book in books.items()}
    yield World(ledger, clock, FakeSource([]), feeds, Metrics(ledger), tmp_path)
    db.dispose()


def paid(
    world: World, provider: str, event_id: str, invoice: str, payment_id: str, amount: str
) -> PaymentEvent:
    """A payment made in the target's books, and the hint its event gives."""
    world.feeds[provider].add_fact(invoice, payment_id, amount)
    return PaymentEvent(
        provider=provider,
        event_id=event_id,
        invoice_external_id=invoice,
        kind="partially_paid",
        amount=Decimal(amount),
        currency="USD",
        occurred_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        provider_payment_id=payment_id,
    )


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def post(url: str, body: bytes, headers: dict) -> requests.Response:
    return requests.post(url, data=body, headers=headers, timeout=10)


# --- genuine events ----------------------------------------------------------------


def test_genuine_events_are_stored_once_and_applied_once(world: World) -> None:
    # Three Stripe payments of one invoice and two Intuit payments (one per payload
    # shape) of another, each delivered ten times, all concurrently, shuffled.
    stripe_ids = ["evt_a", "evt_b", "evt_c"]
    for n, event_id in enumerate(stripe_ids):
        world.feeds["stripe"].resolved[event_id] = [
            paid(world, "stripe", event_id, "in_1", f"inpay_{n}", "20.00")
        ]
    legacy_body, cloud_body = intuit_legacy("501"), intuit_cloud("ce-0001", "502")
    requests_to_send: list[tuple[str, bytes, dict]] = []
    for event_id in stripe_ids:
        body = stripe_event(event_id)
        requests_to_send += [("stripe", body, stripe_headers(body))] * 10
    requests_to_send += [("quickbooks", legacy_body, intuit_headers(legacy_body))] * 10
    requests_to_send += [("quickbooks", cloud_body, intuit_headers(cloud_body))] * 10
    random.Random(8).shuffle(requests_to_send)

    with serving(create_app(world.parts(worker=False))) as base:
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(
                pool.map(lambda r: post(f"{base}/webhooks/{r[0]}", r[1], r[2]), requests_to_send)
            )
        assert {a.status_code for a in answers} == {200}
        assert sum(a.json()["stored"] for a in answers) == 5
        assert sum(a.json()["duplicates"] for a in answers) == len(answers) - 5
        metrics = requests.get(f"{base}/metrics", timeout=5).text

    rows = world.inbox_rows()
    assert [(p, s) for p, _, s in rows] == [("quickbooks", "pending")] * 2 + [
        ("stripe", "pending")
    ] * 3
    assert {e for _, e, _ in rows} >= set(stripe_ids) | {"ce-0001"}
    counted = _samples(metrics, "billsync_webhook_events_total")
    assert counted[("stripe", "stored")] == 3 and counted[("stripe", "duplicate")] == 27
    assert counted[("quickbooks", "stored")] == 2 and counted[("quickbooks", "duplicate")] == 18

    # A restart with a worker processes what the receiver stored, exactly once.
    world.feeds["quickbooks"].resolved = {
        event_id: [paid(world, "quickbooks", event_id, "130", f"pay-{event_id}", "30.00")]
        for provider, event_id, _ in rows
        if provider == "quickbooks"
    }
    with serving(create_app(world.parts(worker=True))):
        wait_for(lambda: {s for _, _, s in world.inbox_rows()} == {"done"})
    stripe_invoice = world.ledger.get_invoice("stripe", "in_1")
    qbo_invoice = world.ledger.get_invoice("quickbooks", "130")
    assert stripe_invoice is not None and qbo_invoice is not None
    assert stripe_invoice.amount_paid == Decimal("60.00")
    assert len(world.ledger.payments_for_invoice("stripe", "in_1")) == 3
    assert qbo_invoice.amount_paid == Decimal("60.00")
    assert world.source.written, "the worker wrote the new money state back onto the deals"


def test_worker_processes_events_as_they_arrive(world: World) -> None:
    world.feeds["stripe"].resolved["evt_live"] = [
        paid(world, "stripe", "evt_live", "in_1", "inpay_live", "100.00")
    ]
    with serving(create_app(world.parts())) as base:
        body = stripe_event("evt_live")
        assert post(f"{base}/webhooks/stripe", body, stripe_headers(body)).status_code == 200
        wait_for(lambda: world.inbox_rows() == [("stripe", "evt_live", "done")])
        ready = requests.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"ledger": "ok", "migrations": "ok", "inbox_worker": "ok"}
    invoice = world.ledger.get_invoice("stripe", "in_1")
    assert invoice is not None and invoice.money_status == "paid" and invoice.balance == 0
    assert world.source.written["006A"].billing_status == "Paid"


# --- refusals --------------------------------------------------------------------


def _stale(body: bytes) -> dict:
    return stripe_headers(body, at=time.time() - 400)  # well outside ±300 s, however slow


def _future(body: bytes) -> dict:
    return stripe_headers(body, at=time.time() + 400)


STRIPE_BODY = stripe_event("evt_refused")
INTUIT_BODY = intuit_legacy("777")
JSON = {"Content-Type": "application/json"}


def _signed_by(secret: str) -> Any:
    return lambda body: stripe_headers(body, secret)


def _text_plain(body: bytes) -> dict:
    return {**stripe_headers(body), "Content-Type": "text/plain"}


def _unsigned_intuit_type(body: bytes) -> dict:
    return {k: v for k, v in intuit_headers(body).items() if k != "Content-Type"}


# Headers are built when the test runs (a callable of the body): Stripe signatures carry
# a timestamp, and one made at import time is stale by the time a long suite gets here.
REFUSALS = [
    ("stripe", STRIPE_BODY, lambda _: JSON, 400, "missing_signature"),
    ("stripe", STRIPE_BODY, _signed_by("whsec_other"), 400, "bad_signature"),
    ("stripe", STRIPE_BODY + b" ", lambda _: stripe_headers(STRIPE_BODY), 400, "bad_signature"),
    ("stripe", STRIPE_BODY, _stale, 400, "stale"),
    ("stripe", STRIPE_BODY, _future, 400, "stale"),
    ("stripe", b"{not json", stripe_headers, 400, "malformed"),
    ("stripe", STRIPE_BODY, _text_plain, 415, "unsupported_media_type"),
    ("quickbooks", INTUIT_BODY, lambda _: JSON, 401, "missing_signature"),
    ("quickbooks", INTUIT_BODY, lambda body: intuit_headers(body, "wrong"), 401, "bad_signature"),
    ("quickbooks", b"[1,2", intuit_headers, 400, "malformed"),
    ("quickbooks", INTUIT_BODY, _unsigned_intuit_type, 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("provider", "body", "headers", "status", "error"), REFUSALS)
def test_refusals_store_nothing(
    world: World,
    provider: str,
    body: bytes,
    headers: Any,
    status: int,
    error: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    headers = headers(body)
    with serving(create_app(world.parts(worker=False))) as base:
        answer = post(f"{base}/webhooks/{provider}", body, headers)
        metrics = requests.get(f"{base}/metrics", timeout=5).text
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error and answer.json()["message"]
    assert world.inbox_rows() == []
    assert _samples(metrics, "billsync_webhook_events_total")[(provider, error)] == 1
    logged = capfd.readouterr()
    assert "webhook.rejected" in logged.out + logged.err
    for secret_or_body in (STRIPE_SECRET, QBO_TOKEN, "evt_refused", '"777"'):
        assert secret_or_body not in logged.out + logged.err + answer.text


def test_a_connection_without_a_secret_is_not_served(world: World) -> None:
    parts = world.parts(worker=False)
    parts.verifiers = {"stripe": parts.verifiers["stripe"]}
    with serving(create_app(parts)) as base:
        answer = post(f"{base}/webhooks/quickbooks", INTUIT_BODY, intuit_headers(INTUIT_BODY))
    # The same answer as for a name nothing serves: the setting to change is in the
    # server's log (server.no_webhooks, server.started), not in the stranger's answer.
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_configured"
    assert world.inbox_rows() == []


@pytest.mark.parametrize("name", ["nosuchvendor", "Stripe", "stripe%0Aforged", "x" * 300])
def test_an_unknown_name_gets_404_and_learns_nothing(
    world: World, name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    body = stripe_event("evt_unknown")
    with serving(create_app(world.parts(worker=False))) as base:
        answer = post(f"{base}/webhooks/{name}", body, stripe_headers(body))
        metrics = requests.get(f"{base}/metrics", timeout=5).text
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "not_configured",
        "message": "no webhooks are received at this address on this server",
    }
    assert world.inbox_rows() == []
    # One series for every name tried, never one per name (the URL is the stranger's).
    counted = _samples(metrics, "billsync_webhook_events_total")
    assert counted[("(unknown)", "not_configured")] == 1
    assert {p for p, _ in counted} == {"stripe", "quickbooks", "(unknown)"}
    # The name tried is logged for the operator, short and on one line.
    captured = capfd.readouterr()
    logged = captured.out + captured.err
    assert "webhook.rejected" in logged
    assert "\nforged" not in logged and "x" * 65 not in logged


def test_another_quickbooks_company_is_acknowledged_not_refused(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    body = intuit_legacy("888").replace(REALM.encode(), b"1111111111")
    with serving(create_app(world.parts(worker=False))) as base:
        answer = post(f"{base}/webhooks/quickbooks", body, intuit_headers(body))
        metrics = requests.get(f"{base}/metrics", timeout=5).text
    # Intuit retries a refused delivery and holds the app's later events behind it.
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 0, "stored": 0, "duplicates": 0}
    assert world.inbox_rows() == []
    assert _samples(metrics, "billsync_webhook_events_total")[("quickbooks", "ignored")] == 1
    logged = capfd.readouterr()
    assert "quickbooks.webhook_other_realm" in logged.out + logged.err


# --- a connector the server has never heard of ----------------------------------------


ACME_KEY = b"acme-test-key"


def acme_signature(body: bytes) -> str:
    return hmac.new(ACME_KEY, body, hashlib.sha256).hexdigest()


class AcmeVerifier:
    """A third connector's verifier: its own header and content type (form-encoded)."""

    provider = "acme_billing"
    headers = ("X-Acme-Signature",)
    media_types = frozenset({"application/x-www-form-urlencoded"})

    def verify(self, body: bytes, headers: Mapping[str, str]) -> list[WebhookNotification]:
        given = next((v for k, v in headers.items() if k.lower() == "x-acme-signature"), "")
        if not hmac.compare_digest(given.encode(), acme_signature(body).encode()):
            raise WebhookRejected(WebhookRejectReason.BAD_SIGNATURE, "bad Acme signature")
        fields = dict(pair.split("=", 1) for pair in body.decode().split("&"))
        return [
            WebhookNotification(
                provider=self.provider,
                event_id=fields["id"],
                event_type=fields["type"],
                payload=body.decode(),
                received_at=datetime.now(UTC),
            )
        ]


def test_a_third_connector_is_served_by_its_name_with_no_server_change(world: World) -> None:
    world.feeds["acme_billing"] = FakeFeed("acme_billing")
    parts = world.parts()
    parts.verifiers = {**parts.verifiers, "acme_billing": AcmeVerifier()}
    body = b"id=ac_1&type=payment.made"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    signed = {**form, "X-Acme-Signature": acme_signature(body)}
    with serving(create_app(parts)) as base:
        url = f"{base}/webhooks/acme_billing"
        first, again = post(url, body, signed), post(url, body, signed)
        forged = post(url, body, {**form, "X-Acme-Signature": "0" * 64})
        as_json = post(url, body, {**signed, "Content-Type": "application/json"})
        wait_for(lambda: world.inbox_rows() == [("acme_billing", "ac_1", "done")])
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        document = requests.get(f"{base}/openapi.json", timeout=5).json()
    assert (first.status_code, first.json()["stored"]) == (200, 1)
    assert (again.status_code, again.json()["duplicates"]) == (200, 1)
    assert (forged.status_code, forged.json()["error"]) == (401, "bad_signature")
    assert (as_json.status_code, as_json.json()["error"]) == (415, "unsupported_media_type")
    counted = _samples(metrics, "billsync_webhook_events_total")
    assert counted[("acme_billing", "stored")] == 1 and counted[("acme_billing", "duplicate")] == 1
    assert counted[("acme_billing", "stale")] == 0  # its series exist from the start
    # The OpenAPI document describes it from its verifier, beside the built-ins.
    operation = document["paths"]["/webhooks/{name}"]["post"]
    assert {p["name"] for p in operation["parameters"] if p["in"] == "header"} == {
        "X-Acme-Signature",
        "Stripe-Signature",
        "intuit-signature",
    }
    assert set(operation["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert [path for path in document["paths"] if path.startswith("/webhooks")] == [
        "/webhooks/{name}"
    ]


class AppWideVerifier(AcmeVerifier):
    """One vendor app's verifier that names, per notification, the company it is for
    (as Intuit sends every realm of an app to one URL): ``for`` picks the connection."""

    provider = "acme_us"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> list[WebhookNotification]:
        (note,) = super().verify(body, headers)
        fields = dict(pair.split("=", 1) for pair in body.decode().split("&"))
        return [note.model_copy(update={"provider": fields["for"]})]


def test_a_notification_is_stored_under_the_served_connection_its_verifier_names(
    world: World,
) -> None:
    parts = world.parts(worker=False)
    parts.verifiers = {**parts.verifiers, "acme_us": AppWideVerifier()}
    parts.connections = ("stripe", "quickbooks", "acme_us", "acme_uk")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answers = []
    with serving(create_app(parts)) as base:
        for event_id, company in (("ev_1", "acme_us"), ("ev_2", "acme_uk"), ("ev_3", "acme_xx")):
            body = f"id={event_id}&type=payment.made&for={company}".encode()
            signed = {**form, "X-Acme-Signature": acme_signature(body)}
            answers.append(post(f"{base}/webhooks/acme_us", body, signed))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["stored"] for a in answers] == [1, 1, 0]
    assert answers[2].json() == {"received": 1, "stored": 0, "duplicates": 0}
    assert sorted(row[:2] for row in world.inbox_rows()) == [
        ("acme_uk", "ev_2"),
        ("acme_us", "ev_1"),
    ]


def test_declared_oversize_body_is_refused_before_it_is_sent(world: World) -> None:
    """Content-Length says 2 MiB: the answer comes after the headers alone."""
    with serving(create_app(world.parts(worker=False))) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(
                b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (2 * 1024 * 1024)
            )
            conn.sendall(b"{" * 1024)  # a sliver of the promised body, then nothing
            answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")
    assert world.inbox_rows() == []


def test_chunked_oversize_body_is_refused_while_streaming(world: World) -> None:
    """No Content-Length (chunked): the server stops reading once past the limit, so a
    2 MiB body is never held whole; the client still has most of it unsent."""
    chunk = b"x" * 65536
    with serving(create_app(world.parts(worker=False))) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(
                b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            sent = 0
            conn.settimeout(0.05)
            answer = b""
            while sent < 2 * 1024 * 1024 and not answer:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                with contextlib.suppress(TimeoutError):
                    answer = conn.recv(4096)
            conn.settimeout(5)
            answer = answer or conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert sent < 2 * 1024 * 1024, "the server waited for the whole body"
    assert world.inbox_rows() == []


def test_readiness_fails_when_the_worker_is_gone(world: World) -> None:
    parts = world.parts()
    assert parts.worker is not None
    with serving(create_app(parts)) as base:
        parts.worker.stop()
        answer = requests.get(f"{base}/readyz", timeout=5)
        assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
    assert answer.status_code == 503
    assert answer.json()["checks"]["inbox_worker"] != "ok"


def test_readiness_fails_on_a_schema_that_is_not_at_head(tmp_path: Path, world: World) -> None:
    db = create_ledger_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    parts = world.parts(worker=False)
    parts.ledger = Ledger(db)
    with serving(create_app(parts)) as base:
        answer = requests.get(f"{base}/readyz", timeout=5)
    db.dispose()
    assert answer.status_code == 503
    assert "billsync migrate" in answer.json()["checks"]["migrations"]


def test_shutdown_leaves_claimed_but_unprocessed_events_pending(world: World) -> None:
    started = []

    def slow_resolve(notification: Any) -> list[PaymentEvent]:
        started.append(notification.event_id)
        time.sleep(0.3)
        return []

    world.feeds["stripe"].resolve = slow_resolve  # type: ignore[method-assign]
    for n in range(5):
        world.ledger.store_inbox_event(
            "stripe", f"evt_{n}", stripe_event(f"evt_{n}"), {"event_type": "invoice.paid"}
        )
    with serving(create_app(world.parts())):
        wait_for(lambda: started)
    statuses = [s for _, _, s in world.inbox_rows()]
    assert "processing" not in statuses, "a stopped worker must give its claims back"
    assert statuses.count("done") == len(started) and statuses.count("pending") == 5 - len(started)
    assert len(started) < 5


def _samples(exposition: str, name: str) -> dict[tuple[str, ...], float]:
    """(provider, outcome) -> value of the webhook counter in a /metrics page."""
    found: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                found[(sample.labels["provider"], sample.labels["outcome"])] = sample.value
    return found
