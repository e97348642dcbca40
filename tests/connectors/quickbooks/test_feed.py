"""Payments back, against the sandbox: signed notifications (both shapes) resolved into
PaymentEvents, and the same facts through CDC catch-up."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from billsync.connectors.quickbooks import QboWebhookVerifier, QuickBooksConnector
from billsync.connectors.quickbooks.feed import format_cursor
from billsync.core.canonical import InvoiceRef, PaymentEvent, PaymentKind, WebhookNotification
from billsync.core.protocols import ConnectorError
from tests.connectors.quickbooks.conftest import Qbo, customer, draft, line


class Notifications:
    """What the sandbox sent since the last `take`, verified as billsync serve would."""

    def __init__(self, qbo: Qbo) -> None:
        self.outbox = qbo.runner.sandbox.outbox
        self.verifier = QboWebhookVerifier.from_settings(qbo.settings())
        self.seen = len(self.outbox.log)

    def take(self) -> list[WebhookNotification]:
        deliveries = list(self.outbox.log)[self.seen :]
        self.seen += len(deliveries)
        found: list[WebhookNotification] = []
        for delivery in deliveries:
            found += self.verifier.verify(delivery.body, delivery.sign(delivery.body))
        return found


def resolve_all(
    connector: QuickBooksConnector, notes: list[WebhookNotification], entity: str
) -> list[PaymentEvent]:
    events: list[PaymentEvent] = []
    for note in notes:
        if f"qbo.{entity.lower()}." in note.event_type:
            events += connector.resolve(note)
    return events


@pytest.fixture
def setup(qbo: Qbo) -> tuple[QuickBooksConnector, list[InvoiceRef], str]:
    connector = qbo.connector()
    buyer = connector.ensure_customer(customer(1))
    seat = qbo.item_id("SEAT")
    drafts = [draft(f"006PAY{n:012d}", buyer, (line(seat, "2", "100.00"),)) for n in (1, 2, 3)]
    results = connector.create_invoices(drafts)
    refs = [r for r in results.values() if isinstance(r, InvoiceRef)]
    assert len(refs) == 3
    return connector, sorted(refs, key=lambda r: int(r.external_id)), str(buyer.external_id)


def pay(
    connector: QuickBooksConnector, customer_id: str, total: str, *links: tuple[str, str, str]
) -> dict[str, Any]:
    lines = [
        {"Amount": Decimal(value), "LinkedTxn": [{"TxnId": txn, "TxnType": kind}]}
        for kind, txn, value in links
    ]
    body = {"CustomerRef": {"value": customer_id}, "TotalAmt": Decimal(total), "Line": lines}
    return dict(connector.client.call("POST", "payment", body=body)["Payment"])


@pytest.mark.parametrize("shape", ["legacy", "cloudevents"])
def test_payment_with_two_linked_invoices_from_a_signed_notification(
    qbo: Qbo, setup: Any, shape: str
) -> None:
    qbo.admin("POST", "quickbooks/webhook_format", {"format": shape})
    connector, (first, second, _), buyer = setup
    inbox = Notifications(qbo)
    payment = pay(
        connector,
        buyer,
        "250.00",
        ("Invoice", first.external_id, "200.00"),
        ("Invoice", second.external_id, "50.00"),
    )
    notes = inbox.take()
    assert any(n.event_type == "qbo.payment.created.v1" for n in notes)
    events = resolve_all(connector, notes, "payment")
    by_invoice = {e.invoice_external_id: e for e in events}
    assert by_invoice[first.external_id].kind is PaymentKind.PAID
    assert by_invoice[first.external_id].amount == Decimal("200.00")
    assert by_invoice[second.external_id].kind is PaymentKind.PAID  # a hint: money came in
    assert by_invoice[second.external_id].amount == Decimal("50.00")
    # Hints name the payment itself: the engine re-reads every invoice holding "<id>:…"
    assert {e.provider_payment_id for e in events} == {payment["Id"]}
    assert by_invoice[second.external_id].event_id == (
        f"quickbooks:payment:{payment['Id']}:v0:invoice:{second.external_id}"
    )
    assert connector.fetch_invoice(second.external_id).balance == Decimal("150.00")


def test_voided_payment(qbo: Qbo, setup: Any) -> None:
    connector, (first, *_), _ = setup
    inbox = Notifications(qbo)
    payment = qbo.admin(
        "POST", "quickbooks/payments", {"invoice_id": first.external_id, "amount": "200.00"}
    )["Payment"]
    [paid] = resolve_all(connector, inbox.take(), "payment")
    assert (paid.kind, paid.amount) == (PaymentKind.PAID, Decimal("200.00"))
    qbo.admin("POST", f"quickbooks/payments/{payment['Id']}/void")
    [voided] = resolve_all(connector, inbox.take(), "payment")
    assert voided.kind is PaymentKind.VOIDED
    assert voided.invoice_external_id == first.external_id
    assert voided.event_id == f"{paid.event_id.replace(':v0:', ':v1:')}:voided"
    assert voided.provider_payment_id == paid.provider_payment_id
    assert connector.fetch_invoice(first.external_id).balance == Decimal("200.00")


def test_deleted_payment(qbo: Qbo, setup: Any) -> None:
    connector, (first, *_), buyer = setup
    payment = pay(connector, buyer, "20.00", ("Invoice", first.external_id, "20.00"))
    inbox = Notifications(qbo)
    connector.client.call(
        "POST",
        "payment",
        body={"Id": payment["Id"], "SyncToken": payment["SyncToken"]},
        params={"operation": "delete"},
    )
    [deleted] = resolve_all(connector, inbox.take(), "payment")
    assert deleted.kind is PaymentKind.VOIDED and deleted.invoice_external_id is None
    assert deleted.event_id == f"quickbooks:payment:{payment['Id']}:deleted"


def test_overpayment_leaves_an_unapplied_event(qbo: Qbo, setup: Any) -> None:
    connector, (first, *_), _ = setup
    inbox = Notifications(qbo)
    qbo.admin("POST", "quickbooks/payments", {"invoice_id": first.external_id, "amount": "230.00"})
    events = resolve_all(connector, inbox.take(), "payment")
    assert [(e.kind, e.invoice_external_id, e.amount) for e in events] == [
        (PaymentKind.PAID, first.external_id, Decimal("200.00")),
        (PaymentKind.PAID, first.external_id, Decimal("30.00")),  # an overpayment of it
    ]
    assert len({e.event_id for e in events}) == 2


def test_credit_memo_applied_to_our_invoice(qbo: Qbo, setup: Any) -> None:
    connector, (first, *_), buyer = setup
    memo = connector.client.call(
        "POST",
        "creditmemo",
        body={
            "CustomerRef": {"value": buyer},
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": Decimal("80.00"),
                    "SalesItemLineDetail": {"ItemRef": {"value": qbo.item_id("SEAT")}},
                }
            ],
        },
    )["CreditMemo"]
    inbox = Notifications(qbo)
    pay(
        connector,
        buyer,
        "20.00",
        ("Invoice", first.external_id, "100.00"),
        ("CreditMemo", memo["Id"], "80.00"),
    )
    events = resolve_all(connector, inbox.take(), "payment")
    assert sorted((e.kind, e.amount) for e in events) == [
        (PaymentKind.CREDITED, Decimal("80.00")),
        (PaymentKind.PAID, Decimal("20.00")),
    ]
    assert connector.fetch_invoice(first.external_id).balance == Decimal("100.00")


def test_invoice_voided_out_of_band(qbo: Qbo, setup: Any) -> None:
    connector, (_, _, third), _ = setup
    inbox = Notifications(qbo)
    qbo.connector(holder="a-person").void_invoice(third.external_id)
    [voided] = resolve_all(connector, inbox.take(), "invoice")
    assert (voided.kind, voided.invoice_external_id) == (PaymentKind.VOIDED, third.external_id)


def test_cdc_catch_up_yields_the_webhook_facts_oldest_first(qbo: Qbo, setup: Any) -> None:
    connector, (first, second, third), buyer = setup
    cursor = format_cursor(qbo.time.now() - timedelta(minutes=1))
    inbox = Notifications(qbo)
    pay(
        connector,
        buyer,
        "250.00",
        ("Invoice", first.external_id, "200.00"),
        ("Invoice", second.external_id, "50.00"),
    )
    refund = qbo.admin(
        "POST", "quickbooks/payments", {"invoice_id": third.external_id, "amount": "10.00"}
    )
    qbo.admin("POST", f"quickbooks/payments/{refund['Payment']['Id']}/void")
    from_webhooks = {e.event_id: e for e in resolve_all(connector, inbox.take(), "payment")}
    qbo.reset_calls()
    checkpointed = list(connector.events_since(cursor))
    assert qbo.calls() == {"GET cdc": 1}  # the invoices came in the same CDC answer
    polled = {c.item.event_id: c.item for c in checkpointed}
    assert set(from_webhooks) <= set(polled)  # the same ids: the ledger dedupes
    for event_id, event in from_webhooks.items():
        if event.kind is not PaymentKind.VOIDED:
            assert polled[event_id].amount == event.amount
    cursors = [c.cursor for c in checkpointed]
    assert cursors == sorted(cursors) and cursors[0] >= cursor
    assert connector.last_cursor is not None and connector.last_cursor >= cursors[-1]


def test_a_quiet_poll_still_moves_the_cursor(qbo: Qbo, setup: Any) -> None:
    connector = setup[0]
    old = format_cursor(qbo.time.now() - timedelta(days=2))
    assert [c.item for c in connector.events_since(old) if c.item.invoice_external_id] == []
    assert connector.last_cursor is not None and connector.last_cursor > old


def test_a_cursor_older_than_thirty_days_is_a_gap(qbo: Qbo) -> None:
    connector = qbo.connector()
    qbo.reset_calls()
    with pytest.raises(ConnectorError) as caught:
        list(connector.events_since(format_cursor(qbo.time.now() - timedelta(days=31))))
    assert caught.value.code == "CURSOR_TOO_OLD"
    assert "full reconcile" in caught.value.message
    assert qbo.calls() == {}


def test_quickbooks_refusing_the_lookback_is_the_same_gap(qbo: Qbo) -> None:
    connector = qbo.connector()
    connector.catalog().preferences()
    qbo.admin("POST", "clock", {"advance_s": 2 * 86_400})
    try:
        with pytest.raises(ConnectorError) as caught:
            list(connector.events_since(format_cursor(qbo.time.now() - timedelta(days=29))))
    finally:
        qbo.admin("POST", "clock", {"advance_s": -2 * 86_400})
    assert caught.value.code == "CURSOR_TOO_OLD"


def test_invoice_updates_credit_memos_and_moved_payments_are_hints(qbo: Qbo, setup: Any) -> None:
    connector, (first, second, _), _ = setup
    inbox = Notifications(qbo)
    made = qbo.admin(
        "POST", "quickbooks/credit_memos", {"invoice_id": first.external_id, "amount": "50.00"}
    )
    memo, link = made["CreditMemo"], made["Payment"]
    inbox.take()
    record = connector.client.read("Invoice", second.external_id)
    connector.client.call("POST", "invoice", body={**record, "DueDate": "2027-03-01"})
    [updated] = resolve_all(connector, inbox.take(), "invoice")
    assert updated.invoice_external_id == second.external_id and updated.amount == 0
    qbo.admin("POST", f"quickbooks/credit_memos/{memo['Id']}/void")
    notes = inbox.take()
    memo_hints = resolve_all(connector, notes, "creditmemo")
    assert {h.provider_payment_id for h in memo_hints} == {f"creditmemo:{memo['Id']}"}
    payment_hints = resolve_all(connector, notes, "payment")
    assert {h.provider_payment_id for h in payment_hints} == {link["Id"]}
    moved = pay(
        connector,
        str(record["CustomerRef"]["value"]),
        "20.00",
        ("Invoice", first.external_id, "20.00"),
    )
    inbox.take()
    qbo.admin(
        "POST", f"quickbooks/payments/{moved['Id']}/update", {"invoice_id": second.external_id}
    )
    [hint] = resolve_all(connector, inbox.take(), "payment")
    # names the new invoice, and the payment: the engine finds the old one in the ledger
    assert (hint.invoice_external_id, hint.provider_payment_id) == (second.external_id, moved["Id"])
    assert hint.event_id.startswith(f"quickbooks:payment:{moved['Id']}:v1:")
