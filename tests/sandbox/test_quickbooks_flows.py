"""Batch, CDC and payments through python-quickbooks against the QuickBooks sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.base import LinkedTxn, Ref
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.payment import Payment, PaymentLine

from tests.sandbox.quickbooks_support import QboEnv, qbo_sandbox


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QboEnv]:
    with qbo_sandbox(tmp_path_factory.mktemp("qbo-flows")) as running:
        yield running


@pytest.fixture
def qb(env: QboEnv) -> QuickBooks:
    env.admin("POST", "reset")
    return env.client()


def new_customer(name: str) -> Customer:
    record = Customer()
    record.DisplayName = name
    return record


def new_invoice(customer_id: str, amount: int) -> Invoice:
    record = Invoice()
    record.CustomerRef = Ref()
    record.CustomerRef.value = customer_id
    sales = SalesItemLine()
    sales.Amount = Decimal(amount)
    sales.SalesItemLineDetail = SalesItemLineDetail()
    sales.SalesItemLineDetail.ItemRef = Ref()
    sales.SalesItemLineDetail.ItemRef.value = "1"  # built-in "Services"
    sales.SalesItemLineDetail.Qty = 1
    sales.SalesItemLineDetail.UnitPrice = Decimal(amount)
    record.Line.append(sales)
    return record


def payment_line(kind: str, txn_id: str, amount: str) -> PaymentLine:
    line = PaymentLine()
    line.Amount = Decimal(amount)
    link = LinkedTxn()
    link.TxnId, link.TxnType = txn_id, kind
    line.LinkedTxn.append(link)
    return line


def test_batch_create_reports_faults_per_item(qb: QuickBooks) -> None:
    new_customer("Existing Co").save(qb=qb)
    batch = [new_customer("Batch One"), new_customer("Existing Co"), new_customer("Batch Two")]
    result = batch_create(batch, qb=qb)
    assert [c.DisplayName for c in result.successes] == ["Batch One", "Batch Two"]
    assert len(result.faults) == 1
    fault = result.faults[0]
    assert fault.Error[0].code == "6240"
    assert fault.original_object is batch[1]
    assert Customer.count(qb=qb) == 3


def test_batch_items_cannot_see_each_others_creations(qb: QuickBooks) -> None:
    buyer = new_customer("Seen Later").save(qb=qb)
    next_id = str(int(buyer.Id) + 1)
    body = {
        "BatchItemRequest": [
            {"bId": "c1", "operation": "create", "Customer": {"DisplayName": "Fresh"}},
            {"bId": "i1", "operation": "create",
             "Invoice": {"CustomerRef": {"value": next_id},
                         "Line": [{"Amount": 5, "DetailType": "SalesItemLineDetail",
                                   "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}},
            {"bId": "q1", "Query": "SELECT COUNT(*) FROM Customer"},
        ]
    }  # fmt: skip
    response = qb.batch_operation(_dumps(body))
    answers = {a["bId"]: a for a in response["BatchItemResponse"]}
    assert answers["c1"]["Customer"]["Id"] == next_id
    assert answers["i1"]["Fault"]["Error"][0]["code"] == "610"
    assert answers["q1"]["QueryResponse"] == {"totalCount": 1}
    # After the batch the creation is visible.
    assert new_invoice(next_id, 5).save(qb=qb).CustomerRef.value == next_id


def test_batch_limit_and_replay(qb: QuickBooks, env: QboEnv) -> None:
    too_many = {
        "BatchItemRequest": [{"bId": str(n), "Query": "SELECT * FROM Item"} for n in range(31)]
    }
    with pytest.raises(QuickbooksException) as caught:
        qb.batch_operation(_dumps(too_many))
    assert caught.value.error_code == 2010
    body = _dumps({"BatchItemRequest": [
        {"bId": "a", "operation": "create", "Customer": {"DisplayName": "Replayed"}}
    ]})  # fmt: skip
    first = qb.post(f"{qb.api_url}/company/{qb.company_id}/batch", body, request_id="batch-1")
    again = qb.post(f"{qb.api_url}/company/{qb.company_id}/batch", body, request_id="batch-1")
    assert first == again
    assert "Customer" in again["BatchItemResponse"][0]
    assert Customer.count(qb=qb) == 1


def test_payment_with_two_linked_invoices_and_void(qb: QuickBooks, env: QboEnv) -> None:
    buyer = new_customer("Two Invoices Ltd").save(qb=qb)
    first = new_invoice(buyer.Id, 100).save(qb=qb)
    second = new_invoice(buyer.Id, 250).save(qb=qb)
    payment = Payment()
    payment.CustomerRef = buyer.to_ref()
    payment.TotalAmt = Decimal("200.00")
    payment.Line = [
        payment_line("Invoice", first.Id, "100.00"),
        payment_line("Invoice", second.Id, "75.50"),
    ]
    saved = payment.save(qb=qb)
    assert saved.UnappliedAmt == Decimal("24.5")
    assert Invoice.get(first.Id, qb=qb).Balance == Decimal("0.0")
    assert Invoice.get(second.Id, qb=qb).Balance == Decimal("174.5")
    assert Invoice.get(second.Id, qb=qb).LinkedTxn[0].TxnType == "Payment"
    assert Customer.get(buyer.Id, qb=qb).Balance == Decimal("174.5")

    Payment.get(saved.Id, qb=qb).void(qb=qb)
    voided = Payment.get(saved.Id, qb=qb)
    assert voided.TotalAmt == 0 and "Voided" in voided.PrivateNote
    assert Invoice.get(first.Id, qb=qb).Balance == Decimal("100.0")
    assert Invoice.get(second.Id, qb=qb).Balance == Decimal("250.0")
    assert Customer.get(buyer.Id, qb=qb).Balance == Decimal("350.0")


def test_payment_rules(qb: QuickBooks) -> None:
    buyer = new_customer("Rules Inc").save(qb=qb)
    other = new_customer("Other Inc").save(qb=qb)
    bill = new_invoice(buyer.Id, 100).save(qb=qb)
    over = Payment()
    over.CustomerRef = buyer.to_ref()
    over.TotalAmt = Decimal("150")
    over.Line = [payment_line("Invoice", bill.Id, "120")]
    with pytest.raises(QuickbooksException) as caught:
        over.save(qb=qb)
    assert caught.value.error_code == 6000
    foreign = Payment()
    foreign.CustomerRef = other.to_ref()
    foreign.TotalAmt = Decimal("10")
    foreign.Line = [payment_line("Invoice", bill.Id, "10")]
    with pytest.raises(QuickbooksException):
        foreign.save(qb=qb)
    short = Payment()
    short.CustomerRef = buyer.to_ref()
    short.TotalAmt = Decimal("10")
    short.Line = [payment_line("Invoice", bill.Id, "20")]
    with pytest.raises(QuickbooksException):
        short.save(qb=qb)
    short.Line = [payment_line("Invoice", bill.Id, "10")]
    kept = short.save(qb=qb)
    assert Invoice.get(bill.Id, qb=qb).Balance == Decimal("90.0")
    kept.delete(qb=qb)
    assert Invoice.get(bill.Id, qb=qb).Balance == Decimal("100.0")


def test_voiding_a_paid_invoice_leaves_the_payment_unapplied(qb: QuickBooks) -> None:
    buyer = new_customer("Refund Me").save(qb=qb)
    bill = new_invoice(buyer.Id, 60).save(qb=qb)
    payment = Payment()
    payment.CustomerRef = buyer.to_ref()
    payment.TotalAmt = Decimal("60")
    payment.Line = [payment_line("Invoice", bill.Id, "60")]
    payment = payment.save(qb=qb)
    Invoice.get(bill.Id, qb=qb).void(qb=qb)
    after = Payment.get(payment.Id, qb=qb)
    assert after.UnappliedAmt == Decimal("60.0") and after.Line == []
    assert after.SyncToken == "1"
    assert Customer.get(buyer.Id, qb=qb).Balance == Decimal("0.0")


def test_credit_memo_applied_through_a_payment(qb: QuickBooks) -> None:
    buyer = new_customer("Credit Co").save(qb=qb)
    bill = new_invoice(buyer.Id, 100).save(qb=qb)
    memo = CreditMemo()
    memo.CustomerRef = buyer.to_ref()
    memo.Line = new_invoice(buyer.Id, 30).Line
    memo = memo.save(qb=qb)
    payment = Payment()
    payment.CustomerRef = buyer.to_ref()
    payment.TotalAmt = Decimal("0")
    payment.Line = [
        payment_line("Invoice", bill.Id, "30"),
        payment_line("CreditMemo", memo.Id, "30"),
    ]
    saved = payment.save(qb=qb)
    assert saved.UnappliedAmt == 0
    assert Invoice.get(bill.Id, qb=qb).Balance == Decimal("70.0")
    assert CreditMemo.get(memo.Id, qb=qb).RemainingCredit == Decimal("0.0")


def test_admin_payment_overpays_and_voids(qb: QuickBooks, env: QboEnv) -> None:
    buyer = new_customer("Admin Pay").save(qb=qb)
    bill = new_invoice(buyer.Id, 80).save(qb=qb)
    paid = env.admin("POST", "quickbooks/payments", {"invoice_id": bill.Id, "amount": "100.00"})
    payment = paid["Payment"]
    assert payment["TotalAmt"] == Decimal("100.0")
    assert payment["UnappliedAmt"] == Decimal("20.0")
    assert Invoice.get(bill.Id, qb=qb).Balance == 0
    env.admin("POST", f"quickbooks/payments/{payment['Id']}/void", {})
    assert Invoice.get(bill.Id, qb=qb).Balance == Decimal("80.0")


def test_cdc_changes_and_deletions(qb: QuickBooks, env: QboEnv) -> None:
    start = datetime.fromisoformat(env.admin("GET", "clock")["now"])
    buyer = new_customer("Changes Co").save(qb=qb)
    kept = new_invoice(buyer.Id, 10).save(qb=qb)
    gone = new_invoice(buyer.Id, 20).save(qb=qb)
    gone.delete(qb=qb)
    since = (start - timedelta(seconds=1)).isoformat(timespec="seconds")
    # A naive datetime is formatted without offset and read as company time (UTC-7):
    # given UTC wall-clock time it asks for changes seven hours in the future.
    naive = change_data_capture([Invoice], start.replace(tzinfo=None), qb=qb)
    assert not hasattr(naive, "Invoice")
    result = change_data_capture([Invoice, Payment, Customer], since, qb=qb)
    invoices = {i.Id: i for i in result.Invoice}
    assert invoices[kept.Id].TotalAmt == Decimal("10.0")
    assert invoices[gone.Id].status == "Deleted"
    assert [c.DisplayName for c in result.Customer] == ["Changes Co"]
    assert not hasattr(result, "Payment")
    moved = env.admin("POST", "clock", {"advance_s": 10})["now"]
    assert not hasattr(change_data_capture([Invoice], moved, qb=qb), "Invoice")
    with pytest.raises(QuickbooksException) as caught:
        change_data_capture([Invoice], (start - timedelta(days=31)).isoformat(), qb=qb)
    assert caught.value.error_code == 6000


def _dumps(body: object) -> str:
    return json.dumps(body)
