"""Pure conversions: exact totals with one discount line (property-tested), query
escaping, DisplayName rules, invoice refs, payment events and client-side limits."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billsync.connectors.quickbooks.convert import (
    deal_from_note,
    display_name,
    dumps_exact,
    invoice_body,
    invoice_ref,
)
from billsync.connectors.quickbooks.events import payment_events
from billsync.connectors.quickbooks.limits import RequestLimits
from billsync.connectors.quickbooks.query import in_list, in_lists, quote, select
from billsync.core import money
from billsync.core.canonical import InvoiceStatus, PaymentKind
from billsync.core.protocols import ConnectorError
from tests.connectors.quickbooks.conftest import FakeTime, customer, draft, line

quantities = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=2)
prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=2)
discounts = st.one_of(
    st.none(), st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=2)
)


def body_for(lines: Any) -> dict[str, Any]:
    intended = draft("006PROP000000000AA", customer(1), tuple(lines))
    return invoice_body(
        intended,
        customer_id="5",
        home_currency="USD",
        term_id=lambda name: "3",
        tax_code_id=lambda code: code,
        today=date(2026, 11, 2),
    ) | {"_total": intended.total}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(quantities, prices, discounts), min_size=1, max_size=8))
def test_sales_lines_minus_one_discount_line_is_exactly_the_draft_total(rows: Any) -> None:
    lines = [line("11", str(q), str(p), discount_percent=d) for q, p, d in rows]
    body = body_for(lines)
    sales = [ln for ln in body["Line"] if ln["DetailType"] == "SalesItemLineDetail"]
    discount = [ln for ln in body["Line"] if ln["DetailType"] == "DiscountLineDetail"]
    assert len(discount) <= 1
    for sent in sales:  # QuickBooks' rule: Amount == Qty × UnitPrice (within a cent)
        detail = sent["SalesItemLineDetail"]
        assert abs(detail["Qty"] * detail["UnitPrice"] - sent["Amount"]) <= Decimal("0.005")
        assert sent["Amount"] == money.to_currency_precision(sent["Amount"], "USD")
    off = discount[0]["Amount"] if discount else Decimal(0)
    assert off >= 0
    if discount:
        assert discount[0]["DiscountLineDetail"] == {"PercentBased": False}
    assert sum(s["Amount"] for s in sales) - off == body["_total"]
    text = dumps_exact({k: v for k, v in body.items() if k != "_total"})
    assert "e+" not in text.lower() and "e-" not in text.lower()
    assert json.loads(text, parse_float=Decimal)["CustomerRef"] == {"value": "5"}


def test_no_discount_line_without_discounts() -> None:
    body = body_for([line("11", "3", "10.00"), line("12", "1", "5.55")])
    assert [ln["DetailType"] for ln in body["Line"]] == ["SalesItemLineDetail"] * 2


def test_a_discounted_credit_line_cannot_be_expressed() -> None:
    credit = line("11", "-1", "100.00", discount_percent=Decimal("10"))
    with pytest.raises(ConnectorError) as caught:
        body_for([line("11", "2", "100.00"), credit])
    assert caught.value.field == "lines"


def test_unknown_term_and_tax_code_name_the_field() -> None:
    intended = draft("006X", customer(1), (line("11", tax_code="ZZZ"),))
    for term_id, tax_code_id, field in (
        (lambda n: None, lambda c: c, "terms"),
        (lambda n: "3", lambda c: None, "tax_code"),
    ):
        with pytest.raises(ConnectorError) as caught:
            invoice_body(
                intended,
                customer_id="5",
                home_currency="USD",
                term_id=term_id,
                tax_code_id=tax_code_id,
                today=date(2026, 11, 2),
            )
        assert caught.value.field == field and caught.value.deal_id == "006X"


def test_days_until_due_without_terms_sets_the_due_date() -> None:
    intended = draft(
        "006X", customer(1), (line("11"),), terms=None, days_until_due=15, issue_date=None
    )
    body = invoice_body(
        intended,
        customer_id="5",
        home_currency="USD",
        term_id=lambda n: None,
        tax_code_id=lambda c: c,
        today=date(2026, 11, 2),
    )
    assert (body["TxnDate"], body["DueDate"]) == ("2026-11-02", "2026-11-17")
    assert "SalesTermRef" not in body


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("O'Brien & Sons", "'O\\'Brien & Sons'"),
        ("Back\\slash", "'Back\\\\slash'"),
        ("trailing\\", "'trailing\\\\'"),
        ("Zürich Logistik", "'Zürich Logistik'"),
    ],
)
def test_query_literals_escape_quote_and_backslash(value: str, literal: str) -> None:
    assert quote(value) == literal


def test_in_lists_dedupe_without_case_and_stay_short() -> None:
    chunks = list(in_lists(["a", "A", "b"] + [f"name {n}" for n in range(120)], max_values=50))
    assert chunks[0][:2] == ["a", "b"]
    assert [len(c) for c in chunks] == [50, 50, 22]
    assert in_list(["x'y"]) == "('x\\'y')"
    long_names = list(in_lists(["n" * 400 + str(i) for i in range(20)], max_chars=3500))
    assert all(len(in_list(c)) <= 3600 for c in long_names)
    assert select("Item", "Active = true", order_by="Id", start=1) == (
        "SELECT * FROM Item WHERE Active = true ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000"
    )


def test_display_name_rules() -> None:
    assert display_name("Acme: West  Coast", "-") == "Acme- West Coast"
    long = display_name("x" * 600, "-", " (AC-1)")
    assert len(long) == 500 and long.endswith(" (AC-1)")


def test_invoice_ref_status_and_deal_from_the_note() -> None:
    record = {
        "Id": "7",
        "DocNumber": "D-1",
        "TotalAmt": Decimal("100.0"),
        "Balance": Decimal("0"),
        "PrivateNote": "billsync deal 006A; PO 9",
        "CurrencyRef": {"value": "USD"},
    }
    ref = invoice_ref(record, home_currency="USD", environment="sandbox")
    assert (ref.status, ref.amount_paid, ref.deal_id) == (
        InvoiceStatus.PAID,
        Decimal("100.00"),
        "006A",
    )
    assert ref.url == "https://app.sandbox.qbo.intuit.com/app/invoice?txnId=7"
    voided = {**record, "TotalAmt": Decimal("0"), "PrivateNote": "Voided - billsync deal 006A"}
    assert invoice_ref(voided, home_currency="USD").status is InvoiceStatus.VOID
    assert deal_from_note("Voided - billsync deal 006A; PO 9") == "006A"
    assert deal_from_note("typed by a person") is None


def test_payment_events_split_credit_and_cash_in_line_order() -> None:
    payment = {
        "Id": "90",
        "TotalAmt": Decimal("70.00"),
        "UnappliedAmt": Decimal("10.00"),
        "CurrencyRef": {"value": "USD"},
        "MetaData": {
            "CreateTime": "2026-11-02T01:00:00-07:00",
            "LastUpdatedTime": "2026-11-02T01:00:00-07:00",
        },
        "Line": [
            {"Amount": Decimal("50.00"), "LinkedTxn": [{"TxnId": "1", "TxnType": "Invoice"}]},
            {"Amount": Decimal("40.00"), "LinkedTxn": [{"TxnId": "2", "TxnType": "Invoice"}]},
            {"Amount": Decimal("30.00"), "LinkedTxn": [{"TxnId": "8", "TxnType": "CreditMemo"}]},
        ],
    }
    events = payment_events(payment, "USD")
    # Hints: the kind says which way money moved; whether an invoice is settled comes
    # from reading it (read_invoice_money), so no invoice is fetched for a kind.
    assert [(e.invoice_external_id, e.kind, e.amount) for e in events] == [
        ("1", PaymentKind.CREDITED, Decimal("30.00")),
        ("1", PaymentKind.PAID, Decimal("20.00")),
        ("2", PaymentKind.PAID, Decimal("40.00")),
        (None, PaymentKind.PAID, Decimal("10.00")),
    ]
    # Every hint names the payment itself, so the engine also re-reads every invoice
    # the ledger holds a fact "90:…" for (where the payment applied before an edit).
    assert {e.provider_payment_id for e in events} == {"90"}
    assert len({e.event_id for e in events}) == 4
    assert events[0].occurred_at.utcoffset() is not None
    assert events[0].occurred_at.hour == 8  # 01:00 at UTC-07:00


def test_sliding_window_and_pause_use_the_injected_clock() -> None:
    time = FakeTime()
    limits = RequestLimits(
        requests_per_minute=3,
        max_concurrent=2,
        batch_requests_per_minute=1,
        clock=time.monotonic,
        sleep=time.sleep,
    )
    for _ in range(3):
        with limits.slot():
            pass
    assert time.sleeps == []
    with limits.slot():
        pass
    assert time.sleeps == [60.0]  # the 4th request waits for the first to leave the window
    with limits.slot(batch=True):
        pass
    with limits.slot(batch=True):
        pass
    assert time.offset == 120.0
    limits.pause(60)
    with limits.slot():
        pass
    assert time.offset == 180.0  # the window itself: tests/unit/test_ratelimit.py
