"""Webhook abuse against a live `billsync serve` subprocess (the sandbox's connectors,
a real SQLite ledger, its own inbox worker).

Every hostile request gets its documented status and stores nothing: forged and
wrong-secret signatures, a second valid-looking signature header, stale and future
timestamps, a missing header, malformed JSON, non-JSON, 2 MiB bodies (declared and
chunked), a body trickled a byte at a time (answered 408, while other clients are
served as usual), a week-old replay. Every genuine event has its effect exactly once:
ten parallel copies, deliveries out of order, unknown event types and events about
invoices billsync does not know are all acknowledged and change nothing they should
not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
import stripe

from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import running_sandbox
from tests.reliability import chaos, hooks
from tests.reliability.chaos import Size
from tests.reliability.hooks import Endpoint, raw_request, status_of, stripe_body
from tests.reliability.summary import Tally
from tests.reliability.world import billsync_env, run, sqlite_url, start_serve, write_seed
from tests.server.test_webhook_receiver import intuit_headers

SUITE = "webhook abuse"
PAID_TYPES = ("invoice.paid", "invoice_payment.paid", "invoice.payment_succeeded")
WEEK_S = 7 * 24 * 3600


def _seed() -> dict[str, Any]:
    """Sixteen deals with products: the first half billed in Stripe, the rest in
    QuickBooks, all in USD."""
    seed = generate_seed(
        GenerateOptions(deals=24, random_seed=chaos.rng_for(SUITE).randrange(10**6))
    )
    deals = [d for d in seed["salesforce"]["Opportunity"] if d.get("OpportunityLineItems")][:16]
    for n, deal in enumerate(deals):
        deal.update(StageName="Closed Won", CurrencyIsoCode="USD")
        deal["Billing_Platform__c"] = "Stripe" if n < 8 else "QuickBooks"
    seed["salesforce"]["Opportunity"] = deals
    return seed


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    workdir = tmp_path_factory.mktemp("webhook-abuse")
    seed_file = write_seed(workdir / "seed.json", _seed())
    ledger_url = sqlite_url(workdir / "billsync.db")
    env = billsync_env(ledger_url)
    with running_sandbox(workdir / "sb", seed_file=seed_file) as handle:
        first = run(handle.config_path, env, workdir)
        assert first.code == 0 and first.created == 16, first.stderr[-2000:]
        server = start_serve(handle.config_path, env, workdir)
        info = handle.info
        try:
            yield Endpoint(
                server=server,
                handle=handle,
                ledger_url=ledger_url,
                stripe_secret=str(info["stripe_webhook_secret"]),
                intuit_token=str(info["quickbooks_verifier_token"]),
                realm=str(info["quickbooks_realm_id"]),
            )
        finally:
            code = server.stop()
            log = server.log()
            assert "Traceback" not in log, log[-4000:]
            assert code in (0, -15), log[-2000:]


def _invoices(endpoint: Endpoint, target: str) -> list[tuple[str, Decimal]]:
    rows = endpoint.query(
        "SELECT external_id, total FROM invoices WHERE target = :t ORDER BY external_id", t=target
    )
    return [(str(i), Decimal(str(total))) for i, total in rows]


# --- refusals: the right status, nothing stored ---------------------------------------

Headers = list[tuple[str, str]]
Body = bytes | Callable[[Endpoint], bytes] | None
JSON = ("Content-Type", "application/json")
FORGED_MAC = "0" * 64


def _stripe_event(event_id: str, version: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": version or stripe.api_version,
            "created": int(time.time()),
            "type": "invoice.paid",
            "data": {"object": {"id": "in_forged", "object": "invoice"}},
        }
    ).encode()


def _stripe_sig(e: Endpoint, body: bytes, *, secret: str = "", at: float | None = None) -> str:
    stamp = int(time.time() if at is None else at)
    key = (secret or e.stripe_secret).encode()
    return f"t={stamp},v1={hmac.new(key, f'{stamp}.'.encode() + body, hashlib.sha256).hexdigest()}"


def _forged() -> str:
    return f"t={int(time.time())},v1={FORGED_MAC}"


def _intuit_sig(e: Endpoint, body: bytes, token: str = "") -> str:
    return intuit_headers(body, token or e.intuit_token)["intuit-signature"]


# Signature headers, each a function of the endpoint and the body (signed when sent).
def stripe_signed(e: Endpoint, b: bytes) -> Headers:
    return [JSON, ("Stripe-Signature", _stripe_sig(e, b))]


def stripe_wrong_secret(e: Endpoint, b: bytes) -> Headers:
    return [JSON, ("Stripe-Signature", _stripe_sig(e, b, secret="whsec_not_the_endpoints"))]


def stripe_old_genuine_then_forged(e: Endpoint, b: bytes) -> Headers:
    old = _stripe_sig(e, b, at=time.time() - WEEK_S)
    return [JSON, ("Stripe-Signature", old), ("Stripe-Signature", _forged())]


def stripe_forged_then_old_genuine(e: Endpoint, b: bytes) -> Headers:
    old = _stripe_sig(e, b, at=time.time() - WEEK_S)
    return [JSON, ("Stripe-Signature", _forged()), ("Stripe-Signature", old)]


def stripe_as_text(e: Endpoint, b: bytes) -> Headers:
    return [("Content-Type", "text/plain"), ("Stripe-Signature", _stripe_sig(e, b))]


def intuit_signed(e: Endpoint, b: bytes) -> Headers:
    return [JSON, ("intuit-signature", _intuit_sig(e, b))]


def intuit_twice(e: Endpoint, b: bytes) -> Headers:
    return [*intuit_signed(e, b), ("intuit-signature", "A" * 44)]


def intuit_as_form(e: Endpoint, b: bytes) -> Headers:
    return [("Content-Type", "application/x-www-form-urlencoded"), *intuit_signed(e, b)[1:]]


def _case(
    name: str, provider: str, headers: Callable[[Endpoint, bytes], Headers], status: int,
    error: str, body: Body = None,
) -> Any:  # fmt: skip
    return pytest.param(provider, headers, body, status, error, id=name)


def _cloud_without_id(e: Endpoint) -> bytes:
    return hooks.intuit_cloud(e.realm, "", "5", "qbo.payment.created.v1")


def stripe_forged(e: Endpoint, b: bytes) -> Headers:
    return [JSON, ("Stripe-Signature", _forged())]


def stripe_stale(e: Endpoint, b: bytes) -> Headers:
    return [JSON, ("Stripe-Signature", _stripe_sig(e, b, at=time.time() - 301))]


def stripe_future(e: Endpoint, b: bytes) -> Headers:
    return [JSON, ("Stripe-Signature", _stripe_sig(e, b, at=time.time() + 301))]


def stripe_not_ascii(e: Endpoint, b: bytes) -> Headers:
    return [JSON, ("Stripe-Signature", f"t=\u00b2,v1={FORGED_MAC}")]  # "²": Latin-1, isdigit()


def no_signature(e: Endpoint, b: bytes) -> Headers:
    return [JSON]


def intuit_forged(e: Endpoint, b: bytes) -> Headers:
    return [JSON, ("intuit-signature", "A" * 44)]


def intuit_wrong_token(e: Endpoint, b: bytes) -> Headers:
    return [JSON, ("intuit-signature", _intuit_sig(e, b, "not-the-verifier-token"))]


def _other_company(e: Endpoint) -> bytes:
    return hooks.intuit_legacy("123", "Payment", "1")


def _cloud_long_id(e: Endpoint) -> bytes:
    return hooks.intuit_cloud(e.realm, "c" * 256, "5", "qbo.payment.created.v1")


NESTED = b"[" * 50000
OLD_VERSION = _stripe_event("evt_old_version", "2020-08-27")
LONG_ID = _stripe_event("evt_" + "x" * 252)  # 256 characters: longer than the inbox holds
S, Q = "stripe", "quickbooks"
REFUSALS = [
    _case("stripe forged", S, stripe_forged, 400, "bad_signature"),
    _case("stripe wrong secret", S, stripe_wrong_secret, 400, "bad_signature"),
    _case("stripe old genuine + forged", S, stripe_old_genuine_then_forged, 400, "stale"),
    _case("stripe forged + old genuine", S, stripe_forged_then_old_genuine, 400, "bad_signature"),
    _case("stripe stale", S, stripe_stale, 400, "stale"),
    _case("stripe future", S, stripe_future, 400, "stale"),
    _case("stripe missing header", S, no_signature, 400, "missing_signature"),
    _case("stripe timestamp not ASCII", S, stripe_not_ascii, 400, "bad_signature"),
    _case("stripe malformed JSON", S, stripe_signed, 400, "malformed", b'{"id": "evt_x",'),
    _case("stripe non-JSON body", S, stripe_signed, 400, "malformed", b"hello=world"),
    _case("stripe deeply nested JSON", S, stripe_signed, 400, "malformed", NESTED),
    _case("stripe other API version", S, stripe_signed, 400, "malformed", OLD_VERSION),
    _case("stripe event id of 256 characters", S, stripe_signed, 400, "malformed", LONG_ID),
    _case("stripe text/plain", S, stripe_as_text, 415, "unsupported_media_type"),
    _case("intuit forged", Q, intuit_forged, 401, "bad_signature"),
    _case("intuit wrong token", Q, intuit_wrong_token, 401, "bad_signature"),
    _case("intuit second header", Q, intuit_twice, 401, "bad_signature"),
    _case("intuit missing header", Q, no_signature, 401, "missing_signature"),
    _case("intuit malformed JSON", Q, intuit_signed, 400, "malformed", b'{"eventNotifications": ['),
    _case("intuit non-JSON body", Q, intuit_signed, 400, "malformed", b"<xml/>"),
    _case("intuit JSON, not a notification", Q, intuit_signed, 400, "malformed", b'{"a": 1}'),
    _case("intuit cloud event without id", Q, intuit_signed, 400, "malformed", _cloud_without_id),
    _case("intuit deeply nested JSON", Q, intuit_signed, 400, "malformed", NESTED),
    _case("intuit event id of 256 characters", Q, intuit_signed, 400, "malformed", _cloud_long_id),
    _case("intuit form content type", Q, intuit_as_form, 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("provider", "headers", "body", "status", "error"), REFUSALS)
def test_refused_with_its_status_and_nothing_stored(
    endpoint: Endpoint,
    provider: str,
    headers: Callable[[Endpoint, bytes], Headers],
    body: Body,
    status: int,
    error: str,
    tally: Tally,
) -> None:
    default = (
        _stripe_event("evt_reliability_refused")
        if provider == "stripe"
        else hooks.intuit_legacy(endpoint.realm, "Payment", "9999")
    )
    raw = (body(endpoint) if callable(body) else body) or default
    before = endpoint.inbox_count()
    answer = raw_request(
        endpoint.server.base_url,
        hooks.head(provider, [*headers(endpoint, raw), ("Content-Length", str(len(raw)))]),
        [raw],
    )
    tally.tried(SUITE)
    problems = []
    if status_of(answer) != status:
        problems.append(f"answered {answer[:200]!r}, expected {status}")
    elif f'"error":"{error}"' not in answer.decode("latin-1").replace(" ", ""):
        problems.append(f"error word is not {error!r}: {answer[-300:]!r}")
    if endpoint.inbox_count() != before:
        problems.append("a refused request was stored")
    for secret in (endpoint.stripe_secret, endpoint.intuit_token):
        if secret.encode() in answer:
            problems.append("the answer quotes a secret")
    found = tally.violated(SUITE, [f"{provider}: {p}" for p in problems])
    assert found == []


def test_another_companys_notification_is_acknowledged_and_not_stored(
    endpoint: Endpoint, tally: Tally
) -> None:
    """Signed, but for a realm this deployment does not serve: acknowledged with 200
    (Intuit retries refused deliveries, issue 18) and nothing reaches the inbox."""
    raw = _other_company(endpoint)
    before = endpoint.inbox_count()
    answer = raw_request(
        endpoint.server.base_url,
        hooks.head(
            "quickbooks", [*intuit_signed(endpoint, raw), ("Content-Length", str(len(raw)))]
        ),
        [raw],
    )
    tally.tried(SUITE)
    problems = []
    if status_of(answer) != 200 or b'"stored":0' not in answer.replace(b" ", b""):
        problems.append(f"answered {answer[:200]!r}, expected 200 with nothing stored")
    if endpoint.inbox_count() != before:
        problems.append("another company's notification was stored")
    assert tally.violated(SUITE, [f"quickbooks: {p}" for p in problems]) == []


@pytest.mark.parametrize("provider", ["stripe", "quickbooks"])
def test_two_mebibyte_bodies_are_refused_without_reading_them(
    endpoint: Endpoint, provider: str, tally: Tally
) -> None:
    before = endpoint.inbox_count()
    two_mib = 2 * 1024 * 1024
    declared = raw_request(
        endpoint.server.base_url,
        hooks.head(provider, [JSON, ("Content-Length", str(two_mib))]),
        [b"{" * 4096],
    )
    chunk = b"x" * 65536
    chunked = raw_request(
        endpoint.server.base_url,
        hooks.head(provider, [JSON, ("Transfer-Encoding", "chunked")]),
        [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 32,
    )
    tally.tried(SUITE, 2)
    problems = [
        f"{what}: answered {status_of(answer)}"
        for what, answer in (("declared", declared), ("chunked", chunked))
        if status_of(answer) != 413
    ]
    if endpoint.inbox_count() != before:
        problems.append("an oversized request was stored")
    assert tally.violated(SUITE, problems) == []


def test_a_trickled_body_is_cut_off_and_does_not_hold_up_others(
    endpoint: Endpoint, tally: Tally
) -> None:
    """A slow-loris client sends a 64-byte body one byte every half second. uvicorn
    itself would wait for ever; the receiver answers 408 after its body timeout, and
    meanwhile genuine deliveries from other clients are answered at once."""
    body = _stripe_event("evt_slow_loris")
    before = endpoint.inbox_count()
    outcome: dict[str, Any] = {}

    def trickle() -> None:
        started = time.monotonic()
        answer = raw_request(
            endpoint.server.base_url,
            hooks.head(
                "stripe",
                [
                    JSON,
                    ("Stripe-Signature", _stripe_sig(endpoint, body)),
                    ("Content-Length", str(len(body))),
                ],
            ),
            [bytes([b]) for b in body],
            pause=0.5,
        )
        outcome.update(answer=answer, seconds=time.monotonic() - started)

    slow = threading.Thread(target=trickle)
    slow.start()
    latencies = []
    while slow.is_alive() and len(latencies) < 40:
        probe = _stripe_event(f"evt_probe_{len(latencies)}")
        answer, seconds = hooks.timed(
            lambda probe=probe: endpoint.post("stripe", probe, {**endpoint.signed_stripe(probe)})
        )
        latencies.append((answer.status_code, seconds))
        time.sleep(0.25)
    slow.join(60)
    tally.tried(SUITE, 1 + len(latencies))
    print(f"trickled body answered {status_of(outcome.get('answer', b''))} after "
          f"{outcome.get('seconds', 0):.1f} s; {len(latencies)} other requests meanwhile, "
          f"slowest {max(s for _, s in latencies):.2f} s")  # fmt: skip
    problems = []
    if status_of(outcome.get("answer", b"")) != 408:
        problems.append(f"trickled body answered {outcome.get('answer', b'')[:120]!r}, not 408")
    if outcome.get("seconds", 999) > 20:
        problems.append(f"the trickling client was held {outcome['seconds']:.0f} s")
    if any(code != 200 or seconds > 3 for code, seconds in latencies):
        problems.append(f"other clients were held up while it trickled: {latencies}")
    stored = endpoint.inbox_count() - before
    if stored != len(latencies):
        problems.append(f"{stored} rows stored for {len(latencies)} genuine probes")
    if endpoint.inbox_status("stripe", "evt_slow_loris"):
        problems.append("the trickled request was stored")
    assert tally.violated(SUITE, problems) == []


# --- genuine events: exactly-once effects -------------------------------------------


def _deliver(endpoint: Endpoint, provider: str, body: bytes, copies: int) -> list[int]:
    """`copies` deliveries of one request, in parallel, each signed afresh as the
    provider re-signs every attempt."""

    def one(_: int) -> int:
        headers = (
            endpoint.signed_stripe(body) if provider == "stripe" else endpoint.signed_intuit(body)
        )
        return endpoint.post(provider, body, headers).status_code

    with ThreadPoolExecutor(max_workers=min(copies, 16)) as pool:
        return list(pool.map(one, range(copies)))


def test_duplicate_deliveries_in_parallel_take_effect_once(
    endpoint: Endpoint, size: Size, tally: Tally
) -> None:
    invoice, total = _invoices(endpoint, "stripe")[0]
    known = endpoint.stripe_event_ids()
    endpoint.handle.admin("POST", f"stripe/invoices/{invoice}/pay", {})
    events = endpoint.stripe_events(PAID_TYPES, after=known)
    assert events, "the sandbox emitted no payment event"
    statuses: list[int] = []
    for event in events:
        statuses += _deliver(endpoint, "stripe", stripe_body(event), size.webhook_copies)
    endpoint.wait_processed("stripe", [e["id"] for e in events])
    tally.tried(SUITE, len(statuses))
    problems = []
    if set(statuses) != {200}:
        problems.append(f"statuses {sorted(set(statuses))}")
    for event in events:
        if len(endpoint.inbox_status("stripe", event["id"])) != 1:
            problems.append(f"event {event['id']} stored more than once")
    payments = endpoint.payments_of("stripe", invoice)
    if len(payments) != 1:
        problems.append(f"{len(payments)} payment rows for one payment: {payments}")
    row = endpoint.invoice_row("stripe", invoice)
    if row is None or row["status"] != "paid" or Decimal(str(row["amount_paid"])) != total:
        problems.append(f"invoice after the payment: {row}")
    assert tally.violated(SUITE, problems) == []


def test_out_of_order_deliveries_settle_on_the_facts(endpoint: Endpoint, tally: Tally) -> None:
    """Two partial payments and a refund, delivered newest first."""
    invoice, total = _invoices(endpoint, "stripe")[1]
    minor = int(total * 100)
    admin = endpoint.handle.admin
    known = endpoint.stripe_event_ids()
    admin("POST", f"stripe/invoices/{invoice}/pay", {"amount": minor // 3})
    admin("POST", f"stripe/invoices/{invoice}/pay", {})
    admin("POST", f"stripe/invoices/{invoice}/refund", {"amount": 500})
    events = endpoint.stripe_events((*PAID_TYPES, "charge.refunded"), after=known)
    for event in reversed(events):
        assert _deliver(endpoint, "stripe", stripe_body(event), 1) == [200]
    endpoint.wait_processed("stripe", [e["id"] for e in events])
    tally.tried(SUITE, len(events))
    kinds = sorted(kind for _, kind, _ in endpoint.payments_of("stripe", invoice))
    row = endpoint.invoice_row("stripe", invoice)
    problems = []
    if kinds != ["payment", "payment", "refund"]:
        problems.append(f"payment rows {kinds}, expected two payments and a refund")
    # Paid is money applied (gross of refunds); the refund is its own figure and does
    # not reopen the balance (README "Money on the deal").
    shown = row and (Decimal(str(row["amount_paid"])), Decimal(str(row["refunded"])),
                     Decimal(str(row["balance"])), row["money_status"])  # fmt: skip
    if shown != (total, Decimal("5.00"), Decimal(0), "partially_refunded"):
        problems.append(f"paid, refunded, balance, status {shown}: expected {total}, 5.00, 0")
    assert tally.violated(SUITE, problems) == []


def test_unknown_types_and_unknown_invoices_are_acknowledged_and_change_nothing(
    endpoint: Endpoint, tally: Tally
) -> None:
    def event(event_id: str, kind: str, obj: dict[str, Any]) -> bytes:
        return json.dumps(
            {"id": event_id, "object": "event", "api_version": stripe.api_version,
             "created": int(time.time()), "type": kind, "data": {"object": obj}}
        ).encode()  # fmt: skip

    payments_before = endpoint.query("SELECT count(*) FROM payments")[0][0]
    invoices_before = endpoint.query("SELECT count(*) FROM invoices")[0][0]
    stripe_cases = {
        "evt_unknown_type": event("evt_unknown_type", "customer.tax_id.created", {"id": "txi_1"}),
        "evt_made_up_type": event("evt_made_up_type", "billsync.made.up", {}),
        "evt_unknown_invoice": event(
            "evt_unknown_invoice",
            "invoice.paid",
            {
                "id": "in_not_ours",
                "object": "invoice",
                "currency": "usd",
                "amount_paid": 100,
                "metadata": {"billsync_deal_id": "006NOTAREALDEAL"},
                "payments": {"data": [], "has_more": False},
            },
        ),
    }
    statuses = [_deliver(endpoint, "stripe", body, 1)[0] for body in stripe_cases.values()]
    intuit = [
        hooks.intuit_legacy(endpoint.realm, "Payment", "987654"),  # no such payment
        hooks.intuit_legacy(endpoint.realm, "Estimate", "12"),  # an entity we ignore
        hooks.intuit_cloud(endpoint.realm, "ce-unknown-1", "55", "qbo.invoice.emailed.v1"),
    ]
    statuses += [_deliver(endpoint, "quickbooks", body, 1)[0] for body in intuit]
    endpoint.wait_processed("stripe", list(stripe_cases))
    time.sleep(1.0)  # the Intuit ones: ids are derived, wait for the worker to idle
    tally.tried(SUITE, len(statuses))
    problems = []
    if set(statuses) != {200}:
        problems.append(f"statuses {statuses}: genuine events must be acknowledged")
    if endpoint.query("SELECT count(*) FROM payments")[0][0] != payments_before:
        problems.append("a payment was recorded for an unknown invoice or event type")
    if endpoint.query("SELECT count(*) FROM invoices")[0][0] != invoices_before:
        problems.append("an invoice row appeared")
    stuck = endpoint.query("SELECT event_id, status FROM inbox WHERE status = 'processing'")
    if stuck:
        problems.append(f"events stuck in processing: {stuck}")
    assert tally.violated(SUITE, problems) == []


def test_a_genuine_event_replayed_a_week_later(endpoint: Endpoint, tally: Tally) -> None:
    """A captured request replayed as is (its signature a week old) is stale; the same
    event delivered again with a fresh signature is a duplicate with no effect."""
    invoice, _ = _invoices(endpoint, "stripe")[2]
    known = endpoint.stripe_event_ids()
    endpoint.handle.admin("POST", f"stripe/invoices/{invoice}/pay", {})
    event = endpoint.stripe_events(("invoice.paid",), after=known)[-1]
    body = stripe_body(event)
    first = endpoint.post("stripe", body, endpoint.signed_stripe(body))
    endpoint.wait_processed("stripe", [event["id"]])
    payments = endpoint.payments_of("stripe", invoice)
    replayed = endpoint.post("stripe", body, endpoint.signed_stripe(body, at=time.time() - WEEK_S))
    again = endpoint.post("stripe", body, endpoint.signed_stripe(body))
    time.sleep(0.5)
    tally.tried(SUITE, 3)
    problems = []
    if first.status_code != 200 or replayed.status_code != 400:
        problems.append(f"first {first.status_code}, week-old replay {replayed.status_code}")
    elif replayed.json()["error"] != "stale":
        problems.append(f"replay refused as {replayed.json()}")
    if again.status_code != 200 or again.json()["duplicates"] != 1:
        problems.append(f"a fresh re-delivery answered {again.status_code} {again.text}")
    if endpoint.payments_of("stripe", invoice) != payments or len(payments) != 1:
        problems.append(f"payments changed by the replays: {payments}")
    assert tally.violated(SUITE, problems) == []


def test_intuit_notifications_in_both_shapes_take_effect_once(
    endpoint: Endpoint, size: Size, tally: Tally
) -> None:
    (legacy_invoice, legacy_total), (cloud_invoice, cloud_total) = _invoices(
        endpoint, "quickbooks"
    )[:2]
    admin = endpoint.handle.admin
    legacy = admin("POST", "quickbooks/payments", {"invoice_id": legacy_invoice,
                                                   "amount": str(legacy_total)})  # fmt: skip
    cloud = admin("POST", "quickbooks/payments", {"invoice_id": cloud_invoice,
                                                  "amount": str(cloud_total)})  # fmt: skip
    legacy_id = str((legacy.get("Payment") or legacy)["Id"])
    cloud_id = str((cloud.get("Payment") or cloud)["Id"])
    bodies = [
        hooks.intuit_legacy(endpoint.realm, "Payment", legacy_id),
        hooks.intuit_cloud(endpoint.realm, f"ce-{cloud_id}", cloud_id, "qbo.payment.created.v1"),
    ]
    statuses = [
        s for body in bodies for s in _deliver(endpoint, "quickbooks", body, size.webhook_copies)
    ]
    endpoint.wait_processed("quickbooks", [f"ce-{cloud_id}"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not endpoint.payments_of("quickbooks", legacy_invoice):
        time.sleep(0.1)
    tally.tried(SUITE, len(statuses))
    problems = []
    if set(statuses) != {200}:
        problems.append(f"statuses {sorted(set(statuses))}")
    for invoice, total in ((legacy_invoice, legacy_total), (cloud_invoice, cloud_total)):
        payments = endpoint.payments_of("quickbooks", invoice)
        row = endpoint.invoice_row("quickbooks", invoice)
        if len(payments) != 1:
            problems.append(f"invoice {invoice}: {len(payments)} payment rows {payments}")
        if row is None or row["status"] != "paid" or Decimal(str(row["amount_paid"])) != total:
            problems.append(f"invoice {invoice} after its payment: {row}")
    assert tally.violated(SUITE, problems) == []


def test_refusals_are_in_the_log_without_secrets(endpoint: Endpoint, tally: Tally) -> None:
    log = endpoint.server.log()
    tally.tried(SUITE)
    problems = []
    if "webhook.rejected" not in log:
        problems.append("refusals are not logged")
    for secret in (endpoint.stripe_secret, endpoint.intuit_token):
        if secret in log:
            problems.append("the server log quotes a webhook secret")
    assert tally.violated(SUITE, problems) == []


def test_a_genuine_event_the_parser_cannot_read_does_not_block_the_inbox(
    endpoint: Endpoint, tally: Tally
) -> None:
    """Signed, so stored and acknowledged; but its invoice has no id. It must end up
    failed (for an operator), and the events after it must still be processed."""

    def event(event_id: str, kind: str, obj: dict[str, Any]) -> bytes:
        return json.dumps(
            {"id": event_id, "object": "event", "api_version": stripe.api_version,
             "created": int(time.time()), "type": kind, "data": {"object": obj}}
        ).encode()  # fmt: skip

    poison = event(
        "evt_unreadable",
        "invoice.voided",
        {"object": "invoice", "currency": "usd", "metadata": {"billsync_deal_id": "006X"}},
    )
    after = event("evt_after_unreadable", "invoice.finalized", {"id": "in_x"})
    statuses = _deliver(endpoint, "stripe", poison, 1) + _deliver(endpoint, "stripe", after, 1)
    tally.tried(SUITE, 2)
    problems = []
    if statuses != [200, 200]:
        problems.append(f"statuses {statuses}")
    try:
        endpoint.wait_processed("stripe", ["evt_unreadable", "evt_after_unreadable"], timeout=20)
    except AssertionError as stuck:
        problems.append(f"the inbox is blocked: {stuck}")
    if endpoint.inbox_status("stripe", "evt_after_unreadable") != ["done"]:
        problems.append("the event after the unreadable one was not processed")
    assert tally.violated(SUITE, problems) == []
