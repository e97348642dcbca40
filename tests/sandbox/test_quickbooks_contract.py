"""python-quickbooks (unmodified) against the QuickBooks sandbox: entities, rules, faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
from quickbooks import QuickBooks
from quickbooks.exceptions import (
    ObjectNotFoundException,
    QuickbooksException,
    UnsupportedException,
    ValidationException,
)
from quickbooks.objects.base import Ref
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import (
    DiscountLine,
    DiscountLineDetail,
    SalesItemLine,
    SalesItemLineDetail,
)
from quickbooks.objects.employee import Employee
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.taxcode import TaxCode
from quickbooks.objects.term import Term
from quickbooks.objects.vendor import Vendor

from tests.sandbox.quickbooks_support import QboEnv, qbo_sandbox

ITEMS = [
    {"Name": f"Plan {n:02d}", "Sku": f"PLAN-{n}", "Type": "Service", "UnitPrice": Decimal(10 * n),
     "IncomeAccountRef": {"value": "1"}}
    for n in range(1, 26)
]  # fmt: skip


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QboEnv]:
    with qbo_sandbox(tmp_path_factory.mktemp("qbo-contract")) as running:
        yield running


@pytest.fixture
def qb(env: QboEnv) -> QuickBooks:
    env.admin("POST", "reset")
    env.admin("POST", "seed", {"quickbooks": {"Item": ITEMS}})
    return env.client()


def customer(qb: QuickBooks, name: str, **fields: object) -> Customer:
    record = Customer()
    record.DisplayName = name
    for key, value in fields.items():
        setattr(record, key, value)
    return record.save(qb=qb)


def item_id(qb: QuickBooks, name: str) -> str:
    return str(Item.filter(Name=name, qb=qb)[0].Id)


def line(item: str, qty: object, price: object, amount: object) -> SalesItemLine:
    sales = SalesItemLine()
    sales.Amount = amount
    sales.SalesItemLineDetail = SalesItemLineDetail()
    sales.SalesItemLineDetail.ItemRef = Ref()
    sales.SalesItemLineDetail.ItemRef.value = item
    sales.SalesItemLineDetail.Qty = qty
    sales.SalesItemLineDetail.UnitPrice = price
    return sales


def invoice(qb: QuickBooks, buyer: Customer, *lines: SalesItemLine, **fields: object) -> Invoice:
    record = Invoice()
    record.CustomerRef = buyer.to_ref()
    record.Line.extend(lines)
    for key, value in fields.items():
        setattr(record, key, value)
    return record


def test_customer_create_read_and_duplicate_name_across_vendor(qb: QuickBooks) -> None:
    vendor = Vendor()
    vendor.DisplayName = "Globex Supplies"
    vendor.save(qb=qb)
    created = customer(qb, "Initech", PrimaryEmailAddr=None)
    assert created.Id and created.SyncToken == "0"
    assert created.MetaData["CreateTime"].endswith("-07:00")
    fetched = Customer.get(created.Id, qb=qb)
    assert fetched.DisplayName == "Initech" and fetched.Balance == Decimal("0.0")
    with pytest.raises(QuickbooksException) as caught:
        customer(qb, "globex supplies")
    assert caught.value.error_code == 6240
    assert "Duplicate Name Exists" in caught.value.message
    assert "globex supplies" in caught.value.detail


@pytest.mark.parametrize(("name", "code"), [("Acme: West", 2040), ("x" * 501, 2050)])
def test_display_name_rules(qb: QuickBooks, name: str, code: int) -> None:
    with pytest.raises(ValidationException) as caught:
        customer(qb, name)
    assert caught.value.error_code == code


def test_employee_shares_the_name_space_and_taxcodes_are_read_only(
    qb: QuickBooks, env: QboEnv
) -> None:
    customer(qb, "Jane Roe")
    employee = Employee()
    employee.DisplayName = "Jane Roe"
    with pytest.raises(QuickbooksException) as caught:
        employee.save(qb=qb)
    assert caught.value.error_code == 6240
    employee.DisplayName = "Jane Roe (staff)"
    assert employee.save(qb=qb).Id
    assert {c.Name for c in TaxCode.all(qb=qb)} == {"TAX", "NON", "Sales Tax 8.25%"}
    with pytest.raises(UnsupportedException):
        qb.create_object("TaxCode", json.dumps({"Name": "VAT"}))
    net45 = Term()
    net45.Name, net45.DueDays = "Net 45", 45
    assert net45.save(qb=qb).DueDays == 45
    listed = requests.get(
        f"{env.url}/v3/company/{env.realm_id}/query",
        params={"query": "SELECT * FROM Term WHERE DueDays >= 45 ORDERBY DueDays"},
        headers={"Authorization": f"Bearer {qb.auth_client.access_token}"},
        timeout=5,
    ).json()
    assert [t["Name"] for t in listed["QueryResponse"]["Term"]] == ["Net 45", "Net 60"]


def test_display_name_built_from_parts(qb: QuickBooks) -> None:
    person = Customer()
    person.GivenName, person.FamilyName = "Ada", "Lovelace"
    assert person.save(qb=qb).DisplayName == "Ada Lovelace"


def test_item_query_paging(qb: QuickBooks) -> None:
    first = Item.where("Type = 'Service'", start_position=1, max_results=10, qb=qb)
    second = Item.where("Type = 'Service'", start_position=11, max_results=10, qb=qb)
    third = Item.where("Type = 'Service'", start_position=21, max_results=10, qb=qb)
    names = [i.Name for i in first + second + third]
    assert len(names) == 27 and len(set(names)) == 27  # 25 seeded + 2 built-in
    assert Item.count(qb=qb) == 27
    everything = Item.all(max_results=1000, qb=qb)  # "SELECT *, Sku FROM Item ..."
    assert len(everything) == 27
    ordered = Item.where("Name LIKE 'Plan%'", order_by="UnitPrice DESC", max_results=3, qb=qb)
    assert [i.UnitPrice for i in ordered] == [250, 240, 230]
    assert [i.Sku for i in Item.choose(["PLAN-3", "PLAN-4"], field="Sku", qb=qb)] == [
        "PLAN-3",
        "PLAN-4",
    ]


def test_query_or_is_a_parse_error(qb: QuickBooks) -> None:
    with pytest.raises(ValidationException) as caught:
        Item.where("Name = 'a' OR Name = 'b'", qb=qb)
    assert caught.value.error_code == 4000


def test_invoice_totals_terms_discount_and_docnumbers(qb: QuickBooks) -> None:
    buyer = customer(qb, "Hooli")
    net30 = Term.filter(Name="Net 30", qb=qb)[0]
    discount = DiscountLine()
    discount.DiscountLineDetail = DiscountLineDetail()
    discount.DiscountLineDetail.PercentBased = True
    discount.DiscountLineDetail.DiscountPercent = 10
    draft = invoice(
        qb,
        buyer,
        line(item_id(qb, "Plan 01"), 3, Decimal("10.00"), Decimal("30.00")),
        line(item_id(qb, "Plan 02"), Decimal("1.5"), Decimal("20.00"), Decimal("30.00")),
        discount,
        SalesTermRef=net30.to_ref(),
        TxnDate="2026-01-15",
    )
    saved = draft.save(qb=qb)
    assert saved.TotalAmt == Decimal("54.0")
    assert saved.Balance == Decimal("54.0")
    assert saved.DueDate == "2026-02-14"
    assert saved.DocNumber == "1001"
    kinds = [entry.DetailType for entry in saved.Line]
    assert kinds == [
        "SalesItemLineDetail", "SalesItemLineDetail", "SubTotalLineDetail", "DiscountLineDetail"
    ]  # fmt: skip
    assert saved.Line[3].Amount == Decimal("6.0")
    second = invoice(qb, buyer, line(item_id(qb, "Plan 01"), 1, 10, 10)).save(qb=qb)
    assert second.DocNumber == "1002"
    assert Customer.get(buyer.Id, qb=qb).Balance == Decimal("64.0")
    duplicate = invoice(qb, buyer, line(item_id(qb, "Plan 01"), 1, 10, 10), DocNumber="1001")
    with pytest.raises(QuickbooksException) as caught:
        duplicate.save(qb=qb)
    assert caught.value.error_code == 6140
    too_long = invoice(qb, buyer, line(item_id(qb, "Plan 01"), 1, 10, 10), DocNumber="9" * 22)
    with pytest.raises(ValidationException) as caught:
        too_long.save(qb=qb)
    assert caught.value.error_code == 2050


def test_invoice_validation_faults(qb: QuickBooks, env: QboEnv) -> None:
    buyer = customer(qb, "Vandelay")
    plan = item_id(qb, "Plan 03")
    wrong = invoice(qb, buyer, line(plan, 2, Decimal("30"), Decimal("59.00")))
    with pytest.raises(QuickbooksException) as caught:
        wrong.save(qb=qb)
    assert caught.value.error_code == 6000
    assert "UnitPrice * Qty" in caught.value.detail
    within_a_cent = invoice(qb, buyer, line(plan, 3, Decimal("3.333"), Decimal("10.00")))
    assert within_a_cent.save(qb=qb).TotalAmt == Decimal("10.0")

    no_customer = Invoice()
    no_customer.Line.append(line(plan, 1, 30, 30))
    with pytest.raises(ValidationException) as caught:
        no_customer.save(qb=qb)
    assert caught.value.error_code == 2020

    retired = Item.get(plan, qb=qb)
    retired.Active = False
    retired.save(qb=qb)
    with pytest.raises(ObjectNotFoundException) as caught:
        invoice(qb, buyer, line(plan, 1, 30, 30)).save(qb=qb)
    assert caught.value.error_code == 610
    assert "Invalid Reference Id" in caught.value.detail
    with pytest.raises(ObjectNotFoundException):
        invoice(qb, buyer, line("999", 1, 30, 30)).save(qb=qb)


def test_currency_rules(qb: QuickBooks, env: QboEnv) -> None:
    euro = customer(qb, "Euro GmbH", CurrencyRef=Ref())
    euro.CurrencyRef.value = "EUR"
    euro = euro.save(qb=qb)
    plan = item_id(qb, "Plan 01")
    no_rate = invoice(qb, euro, line(plan, 1, 10, 10))
    no_rate.ExchangeRate = None
    with pytest.raises(QuickbooksException) as caught:
        no_rate.save(qb=qb)
    assert caught.value.error_code == 6000
    rated = invoice(qb, euro, line(plan, 1, 10, 10), ExchangeRate=Decimal("1.08")).save(qb=qb)
    assert rated.CurrencyRef.value == "EUR"
    assert rated.HomeTotalAmt == Decimal("10.8")
    usd = customer(qb, "Dollar LLC")
    mismatch = invoice(qb, usd, line(plan, 1, 10, 10))
    mismatch.CurrencyRef = Ref()
    mismatch.CurrencyRef.value = "EUR"
    with pytest.raises(QuickbooksException) as caught:
        mismatch.save(qb=qb)
    assert caught.value.error_code == 6000
    env.admin("POST", "quickbooks/preferences", {"multicurrency": False})
    try:
        with pytest.raises(QuickbooksException):
            invoice(qb, euro, line(plan, 1, 10, 10), ExchangeRate=2).save(qb=qb)
    finally:
        env.admin("POST", "quickbooks/preferences", {"multicurrency": True})


def test_request_id_replays_the_original_response(qb: QuickBooks, env: QboEnv) -> None:
    buyer = customer(qb, "Massive Dynamic")
    draft = invoice(qb, buyer, line(item_id(qb, "Plan 05"), 1, 50, 50))
    first = draft.save(qb=qb, request_id="deal-006A-rev1")
    draft.Id = None  # the retry after a timeout sends the same create again
    again = draft.save(qb=qb, request_id="deal-006A-rev1")
    assert again.Id == first.Id
    assert again.MetaData.CreateTime == first.MetaData.CreateTime
    assert len(env.state()["Invoice"]) == 1
    other = invoice(qb, buyer, line(item_id(qb, "Plan 05"), 1, 50, 50))
    assert other.save(qb=qb, request_id="deal-006B-rev1").Id != first.Id


def test_stale_sync_token_is_5010(qb: QuickBooks) -> None:
    buyer = customer(qb, "Soylent")
    saved = invoice(qb, buyer, line(item_id(qb, "Plan 01"), 1, 10, 10)).save(qb=qb)
    fresh = Invoice.get(saved.Id, qb=qb)
    fresh.PrivateNote = "first edit"
    updated = fresh.save(qb=qb)
    assert updated.SyncToken == "1"
    fresh.PrivateNote = "edit from a stale copy"  # still carries SyncToken 0
    with pytest.raises(QuickbooksException) as caught:
        fresh.save(qb=qb)
    assert caught.value.error_code == 5010
    assert "Stale Object Error" in caught.value.message


def test_sparse_update_keeps_other_fields(qb: QuickBooks, env: QboEnv) -> None:
    buyer = customer(qb, "Cyberdyne", Notes="keep me")
    response = qb.update_object(
        "Customer",
        json.dumps(
            {"Id": buyer.Id, "SyncToken": "0", "sparse": True, "CompanyName": "Cyberdyne Systems"}
        ),
    )
    assert response["Customer"]["Notes"] == "keep me"
    assert response["Customer"]["CompanyName"] == "Cyberdyne Systems"
    assert response["Customer"]["SyncToken"] == "1"


def test_void_delete_and_send(qb: QuickBooks, env: QboEnv) -> None:
    buyer = customer(qb, "Tyrell")
    plan = item_id(qb, "Plan 02")
    voided = invoice(qb, buyer, line(plan, 1, 20, 20)).save(qb=qb)
    voided.void(qb=qb)
    after = Invoice.get(voided.Id, qb=qb)
    assert after.TotalAmt == 0 and after.Balance == 0
    assert "Voided" in after.PrivateNote
    doomed = invoice(qb, buyer, line(plan, 1, 20, 20)).save(qb=qb)
    doomed.delete(qb=qb)
    with pytest.raises(ObjectNotFoundException):
        Invoice.get(doomed.Id, qb=qb)
    sent = invoice(qb, buyer, line(plan, 1, 20, 20)).save(qb=qb)
    response = sent.send(qb=qb, send_to="ap@tyrell.test")
    assert response["Invoice"]["EmailStatus"] == "EmailSent"
    assert response["Invoice"]["BillEmail"] == {"Address": "ap@tyrell.test"}
    with pytest.raises(UnsupportedException):  # name lists are made inactive, never deleted
        qb.delete_object("Customer", json.dumps({"Id": buyer.Id, "SyncToken": "0"}))


def test_credit_memo_totals(qb: QuickBooks) -> None:
    buyer = customer(qb, "Wayne Enterprises")
    memo = CreditMemo()
    memo.CustomerRef = buyer.to_ref()
    memo.Line.append(line(item_id(qb, "Plan 04"), 1, 40, 40))
    saved = memo.save(qb=qb)
    assert saved.TotalAmt == Decimal("40.0") and saved.RemainingCredit == Decimal("40.0")


def test_unknown_entity_path(qb: QuickBooks, env: QboEnv) -> None:
    response = requests.post(
        f"{env.url}/v3/company/{env.realm_id}/gadget",
        json={},
        headers={"Authorization": f"Bearer {qb.auth_client.access_token}"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["Fault"]["Error"][0]["code"] == "500"
