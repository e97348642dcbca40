"""Contract against `responses`, with Stripe's own example objects (fixtures/, from the
stripe/openapi fixtures) as bodies: what we send, form-encoded, and what we read from
real shapes — including the parts the sandbox does not emulate (taxes, webhook payloads
without embedded lists, events in an older API version)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
import stripe
from pydantic import SecretStr

from billsync.connectors.stripe import StripeConnector, connect
from billsync.connectors.stripe.settings import StripeSettings
from billsync.core.canonical import DiscrepancyKind, InvoiceLine, PaymentKind, WebhookNotification
from billsync.core.idempotency import short_key
from tests.connectors.stripe.support import draft

BASE = "http://stripe.test"
OBJECTS = json.loads((Path(__file__).parent / "fixtures" / "stripe_objects.json").read_text())[
    "resources"
]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DEAL = {"billsync_deal_id": "006DEAL1", "billsync_idempotency_key": draft().idempotency_key}


def obj(kind: str, **overlay: Any) -> dict[str, Any]:
    found: dict[str, Any] = copy.deepcopy(OBJECTS[kind])
    found.update(overlay)
    return found


def page(*items: dict[str, Any], url: str = "/v1/x") -> dict[str, Any]:
    return {"object": "list", "data": list(items), "has_more": False, "url": url}


def form(call: Any) -> dict[str, list[str]]:
    return parse_qs(call.request.body or "")


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def connector(**overrides: Any) -> StripeConnector:
    settings = StripeSettings(
        enabled=True,
        api_key=SecretStr("sk_test_responses123456"),
        base_url=BASE,
        webhook_secrets=[SecretStr("whsec_test")],
        **overrides,
    )
    return connect(settings, sleep=lambda s: None, now=lambda: NOW)


def invoice(status: str, total: int, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": "in_1",
        "customer": "cus_1",
        "currency": "usd",
        "status": status,
        "total": total,
        "total_excluding_tax": total,
        "amount_due": total,
        "amount_remaining": total,
        "amount_paid": 0,
        "metadata": DEAL,
        "collection_method": "send_invoice",
        "lines": page(url="/v1/invoices/in_1/lines"),
    }
    return obj("invoice", **{**fields, **extra})


def register_create_flow(mock: responses.RequestsMock, final_total: int) -> None:
    mock.post(f"{BASE}/v1/invoices", json=invoice("draft", 0))
    mock.post(f"{BASE}/v1/invoices/in_1/add_lines", json=invoice("draft", final_total))
    opened = invoice("open", final_total, number="ABC-0001", hosted_invoice_url="https://i/1")
    mock.post(f"{BASE}/v1/invoices/in_1/finalize", json=opened)
    mock.post(f"{BASE}/v1/invoices/in_1/send", json=opened)


def test_the_create_requests_stripe_receives(mock: responses.RequestsMock) -> None:
    planned = draft(
        [("3", "19.99", None), ("1", "100.00", "10")],
        customer_=draft().customer.model_copy(update={"external_id": "cus_1"}),
        po_number="PO-7",
        memo="Renewal",
    )
    register_create_flow(mock, 14997)
    ref = connector().target.create_invoice(planned)
    assert (ref.status, ref.total, ref.number) == ("open", Decimal("149.97"), "ABC-0001")
    create, add, finalize, send = mock.calls
    sent = form(create)
    assert {k: v[0] for k, v in sent.items()} == {
        "customer": "cus_1",
        "currency": "usd",
        "auto_advance": "false",
        "pending_invoice_items_behavior": "exclude",
        "collection_method": "send_invoice",
        "days_until_due": "30",
        "description": "Renewal",
        "custom_fields[0][name]": "PO number",
        "custom_fields[0][value]": "PO-7",
        "metadata[billsync_deal_id]": "006DEAL1",
        "metadata[billsync_idempotency_key]": planned.idempotency_key,
    }
    lines = form(add)
    assert lines["lines[0][price_data][unit_amount]"] == ["1999"]
    assert lines["lines[0][quantity]"] == ["3"]
    assert lines["lines[0][price_data][product]"] == ["prod_PLATSUB"]
    assert lines["lines[1][price_data][unit_amount]"] == ["9000"]
    assert lines["lines[1][description]"] == ["Line 1 (1 × 100.00 USD, less 10%)"]
    assert lines["lines[1][metadata][billsync_line]"] == ["1"]
    assert form(finalize) == {"auto_advance": ["false"]}
    keys = [c.request.headers["Idempotency-Key"] for c in mock.calls]
    assert keys[0] == short_key(planned.idempotency_key, "create")
    assert keys[2] == short_key(planned.idempotency_key, "finalize")
    assert keys[3] == short_key(planned.idempotency_key, "send")
    assert len(set(keys)) == 4 and send.request.body in (None, "")


def test_a_finalized_total_that_differs_is_a_discrepancy(mock: responses.RequestsMock) -> None:
    planned = draft(customer_=draft().customer.model_copy(update={"external_id": "cus_1"}))
    register_create_flow(mock, 90000)  # e.g. a customer-level coupon took 10% off
    target = connector().target
    ref = target.create_invoice(planned)
    assert ref.total == Decimal("900.00")
    [found] = target.take_discrepancies()
    assert found.kind is DiscrepancyKind.INVOICE_TOTAL_MISMATCH
    assert (found.expected, found.actual, found.external_id) == ("1000.00", "900.00", "in_1")
    assert found.deal_id == "006DEAL1" and target.take_discrepancies() == []


def test_automatic_tax_and_line_tax_rates(mock: responses.RequestsMock) -> None:
    base = draft(customer_=draft().customer.model_copy(update={"external_id": "cus_1"}))
    taxed = InvoiceLine.priced(
        "USD", item_ref="prod_PLATSUB", quantity=Decimal(1), unit_price=Decimal("1000.00"),
        tax_rates=("txr_1Pgc7BB7WZ01zgkW4Iwwvf6z",),
    )  # fmt: skip
    planned = base.model_copy(update={"lines": (taxed,)})
    register_create_flow(mock, 100000)
    connector(automatic_tax=True).target.create_invoice(planned)
    assert form(mock.calls[0])["automatic_tax[enabled]"] == ["true"]
    assert form(mock.calls[1])["lines[0][tax_rates][0]"] == ["txr_1Pgc7BB7WZ01zgkW4Iwwvf6z"]


def test_tax_rate_ids_are_checked_once(mock: responses.RequestsMock) -> None:
    rate = obj("tax_rate")
    mock.get(f"{BASE}/v1/tax_rates/{rate['id']}", json=rate)
    missing = {"error": {"type": "invalid_request_error", "code": "resource_missing",
                         "message": "No such tax rate: 'txr_nope'"}}  # fmt: skip
    mock.get(f"{BASE}/v1/tax_rates/txr_nope", json=missing, status=404)
    catalog = connector().target.catalog()
    assert catalog.tax_code_exists(rate["id"]) and catalog.tax_code_exists(rate["id"])
    assert not catalog.tax_code_exists("txr_nope")
    assert len(mock.calls) == 2


def event(kind: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": "evt_9",
        "type": kind,
        "api_version": stripe.api_version,
        "created": int(NOW.timestamp()),
        "data": {"object": data},
    }
    return obj("event", **{**fields, **extra})


def notification(body: dict[str, Any]) -> WebhookNotification:
    return WebhookNotification(
        provider="stripe",
        event_id=body["id"],
        event_type=body["type"],
        payload=json.dumps(body),
        received_at=NOW,
    )


def linked_invoice(mock: responses.RequestsMock, intent: str = "pi_1") -> None:
    payment = obj("invoice_payment", id="inpay_1", invoice="in_1", currency="usd",
                  status="paid", amount_paid=100000,
                  payment={"type": "payment_intent", "payment_intent": intent})  # fmt: skip
    mock.get(f"{BASE}/v1/invoice_payments", json=page(payment))
    # No invoice read for its metadata: the engine ignores invoices it does not know.


def test_charge_refunded_without_embedded_refunds(mock: responses.RequestsMock) -> None:
    charge = obj("charge", id="ch_1", payment_intent="pi_1", currency="usd", amount_refunded=500)
    del charge["refunds"]  # webhooks in current versions do not include the list
    linked_invoice(mock)
    refund = obj("refund", id="re_1", charge="ch_1", amount=500, currency="usd",
                 status="succeeded", created=int(NOW.timestamp()))  # fmt: skip
    pending = obj("refund", id="re_2", charge="ch_1", amount=700, currency="usd", status="pending")
    mock.get(f"{BASE}/v1/refunds", json=page(refund, pending))
    facts = connector().feed.resolve(notification(event("charge.refunded", charge)))
    # Every refund of the charge is a hint, pending ones too (the money is read afterwards).
    assert [(f.kind, f.amount, f.provider_payment_id, f.invoice_external_id) for f in facts] == [
        (PaymentKind.REFUNDED, Decimal("5.00"), "re_1", "in_1"),
        (PaymentKind.REFUNDED, Decimal("7.00"), "re_2", "in_1"),
    ]
    link = str(mock.calls[0].request.url)
    assert "payment%5Btype%5D=payment_intent" in link and "payment%5Bpayment_intent%5D=pi_1" in link
    assert "charge=ch_1" in str(mock.calls[1].request.url)


def test_dispute_without_payment_intent_goes_through_the_charge(
    mock: responses.RequestsMock,
) -> None:
    dispute = obj("dispute", id="dp_1", charge="ch_1", payment_intent=None, amount=100000,
                  currency="usd", status="needs_response")  # fmt: skip
    mock.get(f"{BASE}/v1/charges/ch_1", json=obj("charge", id="ch_1", payment_intent="pi_1"))
    linked_invoice(mock)
    [fact] = connector().feed.resolve(notification(event("charge.dispute.created", dispute)))
    assert (fact.kind, fact.amount, fact.provider_payment_id) == (
        PaymentKind.DISPUTED,
        Decimal("1000.00"),
        "dp_1",
    )
    inquiry = {**dispute, "id": "dp_2", "status": "warning_needs_response"}
    [asked] = connector().feed.resolve(notification(event("charge.dispute.created", inquiry)))
    assert asked.amount == Decimal("0.00")  # an inquiry withdraws no funds


def test_invoice_paid_is_a_hint_naming_the_invoice(mock: responses.RequestsMock) -> None:
    paid = invoice("paid", 100000, amount_paid=100000, amount_remaining=0)
    paid.pop("payments", None)  # includable: not in webhooks
    facts = connector().feed.resolve(notification(event("invoice.paid", paid)))
    # No call: the engine reads the invoice's payments itself (read_invoice_money).
    assert [(f.invoice_external_id, f.provider_payment_id, f.kind) for f in facts] == [
        ("in_1", None, PaymentKind.PAID)
    ]
    assert len(mock.calls) == 0


def test_an_event_in_another_api_version_is_read_again(mock: responses.RequestsMock) -> None:
    old = event("invoice.voided", {"id": "in_1", "object": "invoice", "charge": "ch_old"},
                api_version="2024-06-20")  # fmt: skip
    mock.get(f"{BASE}/v1/events", json=page(old, url="/v1/events"))
    mock.get(f"{BASE}/v1/invoices/in_1", json=invoice("void", 100000))
    [item] = list(connector().feed.events_since(f"{int(NOW.timestamp()) - 60}:evt_8"))
    assert (item.item.kind, item.item.amount) == (PaymentKind.VOIDED, Decimal("1000.00"))
    assert item.cursor == f"{int(NOW.timestamp())}:evt_9"
    sent = str(mock.calls[0].request.url)
    assert "ending_before=evt_8" in sent and "types%5B0%5D=invoice.paid" in sent
