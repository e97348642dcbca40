"""Reads cost no preferences call: the home currency is read only when something needs it.

Each test builds the invoices with one connector, then reads with a second one on the
same ledger — what the next `billsync run` process is — and counts the sandbox's calls.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from billsync.connectors.quickbooks import QuickBooksConnector
from billsync.connectors.quickbooks.feed import format_cursor
from billsync.core.canonical import InvoiceRef, PaymentKind
from tests.connectors.quickbooks.conftest import Qbo, customer, draft, line

PREFERENCES = "GET preferences"


@pytest.fixture
def invoiced(qbo: Qbo) -> tuple[list[InvoiceRef], str]:
    writer = qbo.connector()
    buyer = writer.ensure_customer(customer(1))
    seat = qbo.item_id("SEAT")
    drafts = [draft(f"006IDL{n:012d}", buyer, (line(seat, "1", "80.00"),)) for n in (1, 2)]
    refs = [r for r in writer.create_invoices(drafts).values() if isinstance(r, InvoiceRef)]
    assert len(refs) == 2
    return sorted(refs, key=lambda r: int(r.external_id)), str(buyer.external_id)


def next_run(qbo: Qbo) -> QuickBooksConnector:
    reader = qbo.connector(holder="next-run")
    qbo.reset_calls()
    return reader


def pay(qbo: Qbo, connector: QuickBooksConnector, buyer: str, invoice: str) -> dict[str, Any]:
    body = {
        "CustomerRef": {"value": buyer},
        "TotalAmt": Decimal("80.00"),
        "Line": [
            {"Amount": Decimal("80.00"), "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]}
        ],
    }
    return dict(connector.client.call("POST", "payment", body=body)["Payment"])


def test_an_idle_poll_makes_one_cdc_call_and_no_preferences_call(qbo: Qbo, invoiced: Any) -> None:
    reader = next_run(qbo)
    since = format_cursor(qbo.time.now())
    assert list(reader.events_since(since)) == []
    assert qbo.calls() == {"GET cdc": 1}


def test_polled_payments_and_invoice_lookups_need_no_preferences(qbo: Qbo, invoiced: Any) -> None:
    (first, second), buyer = invoiced
    since = format_cursor(qbo.time.now() - timedelta(minutes=1))
    pay(qbo, qbo.connector(holder="payer"), buyer, first.external_id)
    reader = next_run(qbo)
    paid = [c.item for c in reader.events_since(since) if c.item.kind is PaymentKind.PAID]
    assert [(e.invoice_external_id, e.amount, e.currency) for e in paid] == [
        (first.external_id, Decimal("80.00"), "USD")
    ]
    assert reader.fetch_invoice(second.external_id).balance == Decimal("80.00")
    assert [r.external_id for r in reader.find_invoices("006IDL000000000002")] == [
        second.external_id
    ]
    assert PREFERENCES not in qbo.calls()


def test_a_deleted_payment_reads_the_home_currency_once(qbo: Qbo, invoiced: Any) -> None:
    (first, _), buyer = invoiced
    payer = qbo.connector(holder="payer")
    payment = pay(qbo, payer, buyer, first.external_id)
    since = format_cursor(qbo.time.now() - timedelta(minutes=1))
    payer.client.call(
        "POST",
        "payment",
        body={"Id": payment["Id"], "SyncToken": payment["SyncToken"]},
        params={"operation": "delete"},
    )
    reader = next_run(qbo)
    voided = [c.item for c in reader.events_since(since) if c.item.invoice_external_id is None]
    assert [(e.kind, e.currency) for e in voided] == [(PaymentKind.VOIDED, "USD")]
    assert qbo.calls()[PREFERENCES] == 1  # a deleted object names no currency
