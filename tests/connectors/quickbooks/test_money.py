"""Contract: `read_invoice_money` says what the sandbox shows after each step of an
invoice's life, driven over HTTP (admin routes and the public API), and costs two
queries a batch."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from billsync.connectors.quickbooks import QuickBooksConnector
from billsync.core.canonical import (
    FactState,
    InvoiceMoney,
    InvoiceRef,
    InvoiceStatus,
    MoneyFactKind,
)
from billsync.core.money_state import MoneyStatus, derive
from tests.connectors.quickbooks.conftest import Qbo, customer, draft, line

D = Decimal


@pytest.fixture
def setup(qbo: Qbo) -> tuple[QuickBooksConnector, list[InvoiceRef]]:
    connector = qbo.connector()
    buyer = connector.ensure_customer(customer(1))
    seat = qbo.item_id("SEAT")
    drafts = [draft(f"006MNY{n:012d}", buyer, (line(seat, "5", "100.00"),)) for n in (1, 2)]
    refs = [r for r in connector.create_invoices(drafts).values() if isinstance(r, InvoiceRef)]
    return connector, sorted(refs, key=lambda r: int(r.external_id))


def shown(qbo: Qbo, invoice_id: str) -> dict[str, Any]:
    [record] = [r for r in qbo.state()["Invoice"] if r["Id"] == invoice_id]
    return dict(record)


def read(qbo: Qbo, connector: QuickBooksConnector, invoice_id: str) -> InvoiceMoney:
    """The read, checked against the sandbox's own record of the invoice."""
    money = connector.read_invoice_money([invoice_id])[invoice_id]
    record = shown(qbo, invoice_id)
    assert money.total == D(str(record["TotalAmt"]))
    assert money.tax == D(str(record["TxnTaxDetail"]["TotalTax"]))
    assert money.net + money.tax == money.total
    assert money.reported_balance == D(str(record["Balance"]))
    assert money.reported_paid == money.total - money.reported_balance
    assert money.version == record["SyncToken"] and money.number == record["DocNumber"]
    assert money.due_date == date.fromisoformat(record["DueDate"])
    state = state_of(money)
    if money.status is not InvoiceStatus.VOID:
        assert state.balance_due == money.reported_balance  # the facts explain Balance
    return money


def state_of(money: InvoiceMoney) -> Any:
    return derive(
        currency=money.currency,
        document_status=money.status,
        net=money.net,
        tax=money.tax,
        total=money.total,
        facts=money.facts,
    )


def facts(money: InvoiceMoney) -> dict[str, tuple[MoneyFactKind, Decimal, FactState]]:
    return {f.fact_id: (f.kind, f.amount, f.state) for f in money.facts}


def pay(qbo: Qbo, invoice_id: str, amount: str) -> dict[str, Any]:
    body = {"invoice_id": invoice_id, "amount": amount}
    return dict(qbo.admin("POST", "quickbooks/payments", body)["Payment"])


def test_partial_full_and_over_payment(qbo: Qbo, setup: Any) -> None:
    connector, (first, _) = setup
    before = read(qbo, connector, first.external_id)
    assert (before.status, before.facts, before.deal_id) == (InvoiceStatus.OPEN, (), first.deal_id)
    assert before.terms == "Net 30" and before.issue_date == date(2026, 11, 2)
    p1 = pay(qbo, first.external_id, "200.00")
    money = read(qbo, connector, first.external_id)
    assert facts(money) == {
        f"{p1['Id']}:invoice:{first.external_id}": (
            MoneyFactKind.PAYMENT,
            D("200.00"),
            FactState.APPLIED,
        )
    }
    assert state_of(money).status is MoneyStatus.PARTIALLY_PAID
    assert money.facts[0].version == p1["SyncToken"]
    pay(qbo, first.external_id, "300.00")
    money = read(qbo, connector, first.external_id)
    assert money.status is InvoiceStatus.PAID and state_of(money).status is MoneyStatus.PAID
    # an overpayment: QuickBooks keeps 50 unapplied on the payment, Balance stays 0
    other = setup[1][1]
    p3 = pay(qbo, other.external_id, "550.00")
    money = read(qbo, connector, other.external_id)
    key = f"{p3['Id']}:invoice:{other.external_id}"
    assert facts(money) == {
        key: (MoneyFactKind.PAYMENT, D("500.00"), FactState.APPLIED),
        f"{key}:unapplied": (MoneyFactKind.UNAPPLIED, D("50.00"), FactState.APPLIED),
    }
    assert money.reported_paid == D("500.00")
    state = state_of(money)
    assert (state.status, state.paid, state.overpaid) == (
        MoneyStatus.OVERPAID, D("500.00"), D("50.00"))  # fmt: skip


def test_payment_edited_moved_and_deleted(qbo: Qbo, setup: Any) -> None:
    connector, (first, second) = setup
    payment = pay(qbo, first.external_id, "500.00")
    assert read(qbo, connector, first.external_id).status is InvoiceStatus.PAID
    edited = qbo.admin("POST", f"quickbooks/payments/{payment['Id']}/update", {"amount": "200.00"})
    assert edited["Payment"]["SyncToken"] == "1"
    money = read(qbo, connector, first.external_id)
    [fact] = money.facts
    assert (fact.fact_id, fact.amount, fact.version) == (
        f"{payment['Id']}:invoice:{first.external_id}",
        D("200.00"),
        "1",
    )
    assert state_of(money).status is MoneyStatus.PARTIALLY_PAID
    qbo.admin(
        "POST", f"quickbooks/payments/{payment['Id']}/update", {"invoice_id": second.external_id}
    )
    both = connector.read_invoice_money([first.external_id, second.external_id])
    assert both[first.external_id].facts == ()
    assert facts(both[second.external_id]) == {
        f"{payment['Id']}:invoice:{second.external_id}": (
            MoneyFactKind.PAYMENT,
            D("200.00"),
            FactState.APPLIED,
        )
    }
    read(qbo, connector, second.external_id)
    qbo.admin("POST", f"quickbooks/payments/{payment['Id']}/delete")
    money = read(qbo, connector, second.external_id)
    assert money.facts == () and money.reported_balance == D("500.00")


def test_credit_memo_applied_then_voided(qbo: Qbo, setup: Any) -> None:
    connector, (first, _) = setup
    pay(qbo, first.external_id, "100.00")
    made = qbo.admin(
        "POST", "quickbooks/credit_memos", {"invoice_id": first.external_id, "amount": "150.00"}
    )
    memo, link = made["CreditMemo"], made["Payment"]
    assert memo["LinkedTxn"] == [{"TxnId": link["Id"], "TxnType": "Payment"}]
    money = read(qbo, connector, first.external_id)
    key = f"{link['Id']}:invoice:{first.external_id}:credit"
    assert facts(money)[key] == (MoneyFactKind.CREDIT, D("150.00"), FactState.APPLIED)
    state = state_of(money)
    assert (state.paid, state.credited, state.balance_due) == (D("100.00"), D("150.00"), D("250"))
    qbo.admin("POST", f"quickbooks/credit_memos/{memo['Id']}/void")
    money = read(qbo, connector, first.external_id)
    assert key not in facts(money) and money.reported_balance == D("400.00")


def test_taxed_invoice_due_date_from_terms_and_terms_changed(qbo: Qbo) -> None:
    connector = qbo.connector()
    buyer = connector.ensure_customer(customer(2))
    seat = qbo.item_id("SEAT")
    taxed = draft(
        "006MNYTAX000000001",
        buyer,
        (line(seat, "2", "100.00", tax_code="Sales Tax 8.25%"), line(seat, "1", "50.00")),
        terms="Net 15",
    )
    ref = connector.create_invoice(taxed)
    money = read(qbo, connector, ref.external_id)
    assert (money.net, money.tax, money.total) == (D("250.00"), D("16.50"), D("266.50"))
    assert money.due_date == date(2026, 11, 17) and money.terms == "Net 15"
    record = shown(qbo, ref.external_id)
    net60 = next(t for t in qbo.state()["Term"] if t["Name"] == "Net 60")
    connector.client.call(
        "POST", "invoice", body={**record, "SalesTermRef": {"value": net60["Id"]}}
    )
    money = read(qbo, connector, ref.external_id)
    assert (money.terms, money.due_date) == ("Net 60", date(2027, 1, 1))


def test_voided_and_deleted_invoices(qbo: Qbo, setup: Any) -> None:
    connector, (first, second) = setup
    pay(qbo, first.external_id, "100.00")
    qbo.admin("POST", f"quickbooks/invoices/{first.external_id}/void")
    money = read(qbo, connector, first.external_id)
    assert money.status is InvoiceStatus.VOID and money.total == 0
    assert state_of(money).status is MoneyStatus.VOIDED
    record = shown(qbo, second.external_id)
    connector.client.call(
        "POST",
        "invoice",
        body={"Id": record["Id"], "SyncToken": record["SyncToken"]},
        params={"operation": "delete"},
    )
    assert connector.read_invoice_money([second.external_id]) == {}


def test_a_batch_costs_two_queries(qbo: Qbo) -> None:
    connector = qbo.connector()
    buyer = connector.ensure_customer(customer(3))
    seat = qbo.item_id("SEAT")
    drafts = [draft(f"006MNYB{n:011d}", buyer, (line(seat, "1", "10.00"),)) for n in range(60)]
    refs = [r for r in connector.create_invoices(drafts).values() if isinstance(r, InvoiceRef)]
    ids = [r.external_id for r in refs]
    for invoice_id in ids[:40]:
        pay(qbo, invoice_id, "4.00")
        pay(qbo, invoice_id, "6.00")
    qbo.reset_calls()
    reads = connector.read_invoice_money([*ids, "999999"])
    assert qbo.calls() == {"POST query": 2}  # 60 invoices, 80 payments: two statements
    assert set(reads) == set(ids)  # the unknown id is absent
    assert sum(len(m.facts) for m in reads.values()) == 80
    assert all(m.status is InvoiceStatus.PAID for m in list(reads.values())[:40])
