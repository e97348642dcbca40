"""Contract: payments, refunds, disputes and credit notes back from the sandbox, by
signed webhook (verified by our verifier) and by polling the events list."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from billsync.connectors.stripe import StripeConnector
from billsync.core.canonical import InvoiceRef, PaymentEvent, PaymentKind
from billsync.core.protocols import ConnectorError
from tests.connectors.stripe.support import ConnectorEnv, customer, draft, wait_until
from tests.sandbox.stripe_support import Receiver, receiver

DAY = 86400


@pytest.fixture
def hooks(env: ConnectorEnv) -> Iterator[Receiver]:
    with receiver() as found:
        env.admin("POST", "webhooks", {"url": found.url})
        yield found
        env.admin("POST", "webhooks", {"url": None})


def invoiced(
    env: ConnectorEnv, connector: StripeConnector, total: str = "1000.00", deal: str = "006DEAL1"
) -> InvoiceRef:
    known = connector.target.ensure_customer(customer())
    return connector.target.create_invoice(
        draft([("1", total, None)], customer_=known, deal_id=deal)
    )


def from_webhooks(
    env: ConnectorEnv, connector: StripeConnector, hooks: Receiver, *types: str
) -> list[PaymentEvent]:
    """Verify every delivery so far with our verifier, resolve those of `types`."""
    assert connector.webhooks is not None
    facts: list[PaymentEvent] = []
    for headers, body in list(hooks.received):
        [note] = connector.webhooks.verify(body, headers)
        if not types or note.event_type in types:
            facts.extend(connector.feed.resolve(note))
    return facts


def money(facts: list[PaymentEvent]) -> dict[str, tuple[PaymentKind, Decimal]]:
    """The ledger's view: one row per provider payment id."""
    return {f.provider_payment_id or "": (f.kind, f.amount) for f in facts}


def hints(facts: list[PaymentEvent]) -> set[tuple[str | None, str | None]]:
    """What the engine does with events: (invoice, payment) pairs to read again."""
    return {(f.invoice_external_id, f.provider_payment_id) for f in facts}


def admin(env: ConnectorEnv, path: str, body: Any = None) -> Any:
    return env.admin("POST", f"stripe/{path}", body or {})


def test_partial_then_full_payment(env: ConnectorEnv, hooks: Receiver) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    env.pay(ref.external_id, 30_000)  # 300.00 of 1000.00
    hooks.wait_for("invoice_payment.paid")
    partial = from_webhooks(env, connector, hooks, "invoice_payment.paid")
    assert [(f.kind, f.amount, f.invoice_external_id) for f in partial] == [
        (PaymentKind.PARTIALLY_PAID, Decimal("300.00"), ref.external_id)
    ]
    env.pay(ref.external_id)  # the rest
    hooks.wait_for("invoice.payment_succeeded")
    hooks.wait_for("invoice_payment.paid", count=2)  # deliveries arrive in any order
    facts = from_webhooks(env, connector, hooks)
    # Each payment is named by its invoice_payment.paid hint; invoice.paid names the
    # invoice only (its payments are read with the invoice, not from the event).
    payments = {f.provider_payment_id: f.amount for f in facts if f.provider_payment_id}
    assert sorted(payments.values()) == [Decimal("300.00"), Decimal("700.00")]
    assert all(pid.startswith("inpay_") for pid in payments)
    assert {f.invoice_external_id for f in facts} == {ref.external_id}
    assert connector.target.fetch_invoice(ref.external_id).balance == Decimal("0.00")
    money = connector.feed.read_invoice_money([ref.external_id])[ref.external_id]
    assert {f.fact_id: f.amount for f in money.facts} == payments


def test_full_payment_in_one_go_is_paid(env: ConnectorEnv, hooks: Receiver) -> None:
    connector = env.connect()
    ref = invoiced(env, connector, "250.00")
    env.pay(ref.external_id)
    hooks.wait_for("invoice.paid")
    hooks.wait_for("invoice_payment.paid")
    rows = money(from_webhooks(env, connector, hooks, "invoice_payment.paid"))
    # The default payment is for the whole amount due: a full payment.
    assert list(rows.values()) == [(PaymentKind.PAID, Decimal("250.00"))]


def test_refunds_are_linked_through_invoice_payments(env: ConnectorEnv, hooks: Receiver) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    env.pay(ref.external_id)
    admin(env, f"invoices/{ref.external_id}/refund", {"amount": 10_000})
    hooks.wait_for("charge.refunded")
    admin(env, f"invoices/{ref.external_id}/refund", {"amount": 5_000})
    hooks.wait_for("charge.refunded", 2)
    refunds = from_webhooks(env, connector, hooks, "charge.refunded")
    rows = money(refunds)
    assert sorted(rows.values()) == [
        (PaymentKind.REFUNDED, Decimal("50.00")),
        (PaymentKind.REFUNDED, Decimal("100.00")),
    ]
    assert all(pid.startswith("re_") for pid in rows)
    assert {f.invoice_external_id for f in refunds} == {ref.external_id}


def test_dispute_opened_then_won_or_lost(env: ConnectorEnv, hooks: Receiver) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    env.pay(ref.external_id)
    dispute = admin(env, f"invoices/{ref.external_id}/dispute", {"reason": "fraudulent"})
    hooks.wait_for("charge.dispute.created")
    admin(env, f"disputes/{dispute['id']}/close", {"status": "won"})
    hooks.wait_for("charge.dispute.closed")
    facts = from_webhooks(env, connector, hooks, "charge.dispute.created", "charge.dispute.closed")
    assert [(f.kind, f.amount, f.provider_payment_id) for f in facts] == [
        (PaymentKind.DISPUTED, Decimal("1000.00"), dispute["id"]),
        (PaymentKind.DISPUTE_CLOSED, Decimal("1000.00"), f"{dispute['id']}:closed"),
    ]
    assert {f.invoice_external_id for f in facts} == {ref.external_id}
    # Lost: the money stays with the bank, nothing comes back.
    other = invoiced(env, connector, "80.00", deal="006DEAL2")
    env.pay(other.external_id)
    lost = admin(env, f"invoices/{other.external_id}/dispute")
    admin(env, f"disputes/{lost['id']}/close", {"status": "lost"})
    hooks.wait_for("charge.dispute.closed", 2)
    closed = [
        f
        for f in from_webhooks(env, connector, hooks, "charge.dispute.closed")
        if f.invoice_external_id == other.external_id
    ]
    assert [(f.kind, f.amount) for f in closed] == [(PaymentKind.DISPUTE_CLOSED, Decimal("0.00"))]


def test_payment_failed_void_and_credit_note(env: ConnectorEnv, hooks: Receiver) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    admin(env, f"invoices/{ref.external_id}/fail")
    hooks.wait_for("invoice.payment_failed")
    note = client_post(env, "/v1/credit_notes", {"invoice": ref.external_id, "amount": 20_000})
    hooks.wait_for("credit_note.created")
    client_post(env, f"/v1/credit_notes/{note['id']}/void", {})
    hooks.wait_for("credit_note.voided")
    admin(env, f"invoices/{ref.external_id}/void")
    hooks.wait_for("invoice.voided")
    types = ("invoice.payment_failed", "credit_note.created", "credit_note.voided")
    facts = from_webhooks(env, connector, hooks, *types, "invoice.voided")
    assert [(f.kind, f.amount, f.provider_payment_id) for f in facts] == [
        (PaymentKind.PAYMENT_FAILED, Decimal("1000.00"), None),
        (PaymentKind.CREDITED, Decimal("200.00"), note["id"]),
        (PaymentKind.CREDITED, Decimal("0.00"), note["id"]),  # voided: still a hint
        (PaymentKind.VOIDED, Decimal("1000.00"), None),
    ]
    assert {f.invoice_external_id for f in facts} == {ref.external_id}
    assert facts[0].event_id.startswith("evt_") and facts[0].event_id.endswith(ref.external_id)


def client_post(env: ConnectorEnv, path: str, data: dict[str, Any]) -> Any:
    response = requests.post(
        f"{env.info['stripe_url']}{path}",
        data=data,
        headers={"Authorization": f"Bearer {env.info['stripe_api_key']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_invoices_billsync_did_not_make_are_named_without_a_metadata_read(
    env: ConnectorEnv, hooks: Receiver
) -> None:
    """Changed on purpose: events are hints and the engine ignores invoice ids it does
    not know, so the feed no longer reads each invoice for its metadata."""
    connector = env.connect()
    cus = client_post(env, "/v1/customers", {"email": "x@example.com"})
    inv = client_post(
        env,
        "/v1/invoices",
        {"customer": cus["id"], "collection_method": "send_invoice", "days_until_due": 30},
    )
    client_post(env, f"/v1/invoices/{inv['id']}/add_lines", {"lines[0][amount]": 500})
    client_post(env, f"/v1/invoices/{inv['id']}/finalize", {})
    env.pay(inv["id"])
    admin(env, f"invoices/{inv['id']}/refund")
    hooks.wait_for("charge.refunded")
    hooks.wait_for("invoice.paid")
    env.clear_calls()
    facts = from_webhooks(env, connector, hooks, "invoice.paid", "charge.refunded")
    assert {f.invoice_external_id for f in facts} == {inv["id"]}
    assert "GET /v1/invoices/{id}" not in env.calls()


def test_every_money_event_names_its_invoice(env: ConnectorEnv, hooks: Receiver) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    env.pay(ref.external_id)
    refund = admin(env, f"invoices/{ref.external_id}/refund", {"amount": 1_000})["refund"]
    admin(env, f"refunds/{refund['id']}/fail")
    dispute = admin(env, f"invoices/{ref.external_id}/dispute")
    admin(env, f"disputes/{dispute['id']}/close", {"status": "won"})
    other = invoiced(env, connector, "50.00", deal="006DEAL2")
    admin(env, f"invoices/{other.external_id}/mark_uncollectible")
    env.pay(other.external_id)
    wanted = (
        "charge.refund.updated", "charge.dispute.created", "charge.dispute.funds_withdrawn",
        "charge.dispute.closed", "charge.dispute.funds_reinstated",
        "invoice.marked_uncollectible", "invoice.paid",
    )  # fmt: skip
    for kind in wanted:
        hooks.wait_for(kind, count=2 if kind == "invoice.paid" else 1)
    assert connector.webhooks is not None
    for headers, body in list(hooks.received):
        [note] = connector.webhooks.verify(body, headers)
        if note.event_type in wanted:
            found = connector.feed.resolve(note)
            assert found, note.event_type
            assert {f.invoice_external_id for f in found} <= {ref.external_id, other.external_id}
    failed = [
        f
        for f in from_webhooks(env, connector, hooks, "charge.refund.updated")
        if f.provider_payment_id == refund["id"]
    ]
    assert [f.amount for f in failed] == [Decimal("0.00")]  # a failed refund returns nothing


def test_polling_catches_up_what_webhooks_missed(env: ConnectorEnv, hooks: Receiver) -> None:
    connector = env.connect()
    start = list(connector.feed.events_since(None))
    assert start == []
    ref = invoiced(env, connector)
    env.pay(ref.external_id, 40_000)
    env.pay(ref.external_id)
    admin(env, f"invoices/{ref.external_id}/refund", {"amount": 1_000})
    # Deliveries are concurrent and unordered: wait for every money event, not the last.
    hooks.wait_for("invoice_payment.paid", count=2)
    hooks.wait_for("invoice.paid")
    hooks.wait_for("charge.refunded")
    webhook_rows = hints(from_webhooks(env, connector, hooks))
    env.admin("POST", "webhooks", {"url": None})  # webhooks lost from here on
    polled = list(connector.feed.events_since(None))
    assert hints([c.item for c in polled]) == webhook_rows
    cursors = [c.cursor for c in polled]
    assert cursors == sorted(cursors, key=lambda c: int(c.split(":")[0]))  # oldest first
    # Nothing new since the last cursor; then a missed dispute shows up alone.
    last = cursors[-1]
    assert list(connector.feed.events_since(last)) == []
    admin(env, f"invoices/{ref.external_id}/dispute")
    newer = list(connector.feed.events_since(last))
    # created and funds_withdrawn: both name the dispute
    assert {(c.item.kind, c.item.provider_payment_id) for c in newer} == {
        (PaymentKind.DISPUTED, newer[0].item.provider_payment_id)
    }
    assert list(connector.feed.events_since(newer[-1].cursor)) == []


def test_a_cursor_older_than_thirty_days_asks_for_a_reconcile(env: ConnectorEnv) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    env.pay(ref.external_id)
    [*_, last] = list(connector.feed.events_since(None))
    env.advance(31 * DAY)
    with pytest.raises(ConnectorError) as caught:
        list(connector.feed.events_since(last.cursor))
    assert caught.value.code == "CURSOR_TOO_OLD" and "reconcile" in caught.value.message.lower()


def test_each_item_cursor_only_passes_a_fully_yielded_event(env: ConnectorEnv) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    env.pay(ref.external_id, 10_000)
    env.pay(ref.external_id)
    polled = list(connector.feed.events_since(None))
    by_event: dict[str, list[str]] = {}
    for item in polled:
        by_event.setdefault(item.item.event_id.split(":")[0], []).append(item.cursor)
    for event_id, cursors in by_event.items():
        assert cursors[-1].endswith(event_id)  # the last fact of an event moves past it
        assert all(not c.endswith(event_id) for c in cursors[:-1])
    wait_until(lambda: True)
