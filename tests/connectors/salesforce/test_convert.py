"""Query record -> Deal, and the precise reason when a record cannot be one."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from billsync.connectors.salesforce.convert import RecordProblem, parse_datetime, to_deal
from billsync.connectors.salesforce.fields import DealFieldPaths
from billsync.core.canonical import Address
from tests.connectors.salesforce import line, opportunity, sf_id

PATHS = DealFieldPaths()


def convert(record: dict[str, Any], *, multi_currency: bool = True) -> Any:
    lines = (record.get("OpportunityLineItems") or {}).get("records") or []
    return to_deal(
        record, lines, paths=PATHS, multi_currency=multi_currency, company_currency="USD"
    )


def test_a_full_record() -> None:
    deal = convert(opportunity(3, lines=[line(1), {**line(2), "Description": "Custom work"}]))
    assert deal.id == sf_id("006", 3)
    assert deal.name == "O'Brien & Sons — order 3"
    assert deal.close_date == date(2026, 11, 1)
    assert deal.revision == datetime(2026, 11, 1, 12, 0, 3, tzinfo=UTC)
    assert (deal.currency, deal.amount, deal.target_hint) == (
        "EUR",
        Decimal("1000.50"),
        "QuickBooks",
    )
    assert deal.account.billing_address == Address(
        line1="1 Harbour Road", line2="Unit 4", city="Dublin", postal_code="D02 X285", country="IE"
    )
    assert (deal.account.number, deal.account.billing_email) == ("AC-00003", "ap@obrien.example")
    first, second = deal.lines
    assert (first.product_code, first.description) == ("SKU-1", "Product 1")  # Name fallback
    assert second.description == "Custom work"
    assert (first.quantity, first.unit_price, first.discount_percent) == (
        Decimal("2"),
        Decimal("150.25"),
        Decimal("12.5"),
    )
    assert first.service_date == date(2026, 11, 15)


def test_single_currency_org_and_empty_currency_use_the_company_currency() -> None:
    assert convert(opportunity(1), multi_currency=False).currency == "USD"
    assert convert(opportunity(1, currency=None)).currency == "USD"


def test_no_lines_is_representable_with_an_amount() -> None:
    deal = convert(opportunity(1, lines=[]))
    assert deal.lines == () and deal.amount == Decimal("1000.50")


def test_numbers_in_text_paths_are_rendered_exactly() -> None:
    paths = DealFieldPaths(po_number="PO__c", terms="Terms_Days__c")
    record = opportunity(1, PO__c=Decimal("4500012345"), Terms_Days__c=30)
    deal = to_deal(record, [], paths=paths, multi_currency=True, company_currency="USD")
    assert (deal.po_number, deal.terms) == ("4500012345", "30")


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"Account": None}, "Account", "has no account"),
        ({"Account": {"Id": "001x", "Name": "  "}}, "Account.Name", "no name"),
        ({"CloseDate": "01/11/2026"}, "CloseDate", "expected a date"),
        ({"CloseDate": None}, "CloseDate", "expected a date"),
        ({"Amount": "12,50"}, "Amount", "not an exact number"),
        ({"Amount": 12.5}, "Amount", "not an exact number"),  # a float must never pass
        ({"CurrencyIsoCode": "XYZ"}, "CurrencyIsoCode", "not a current ISO 4217"),
        ({"SystemModstamp": "2026-11-01T12:00:00"}, "SystemModstamp", "no time zone"),
        ({"Billing_Platform__c": {"nested": 1}}, "Billing_Platform__c", "expected text"),
        (
            {"Account": {**opportunity(1)["Account"], "Billing_Email__c": "not an email"}},
            "Account.Billing_Email__c",
            "is not an email address",
        ),
    ],
)
def test_unrepresentable_records_name_the_field(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(RecordProblem) as exc:
        convert({**opportunity(1), **changes})
    assert exc.value.field == field
    assert reason in exc.value.reason


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"Quantity": None}, "OpportunityLineItems[1].Quantity"),
        ({"UnitPrice": None}, "OpportunityLineItems[1].UnitPrice"),
        ({"Quantity": "lots"}, "OpportunityLineItems[1].Quantity"),
        ({"Discount": Decimal("-5")}, "OpportunityLineItems[1].Discount"),
        ({"ServiceDate": "soon"}, "OpportunityLineItems[1].ServiceDate"),
        ({"Id": None}, "OpportunityLineItems[1].Id"),
    ],
)
def test_bad_lines_name_the_line_and_field(changes: dict[str, Any], field: str) -> None:
    record = opportunity(1, lines=[line(1), {**line(2), **changes}])
    with pytest.raises(RecordProblem) as exc:
        convert(record)
    assert exc.value.field == field


def test_parse_datetime_wire_format() -> None:
    assert parse_datetime("2026-11-01T12:00:00.000+0000", "x") == datetime(
        2026, 11, 1, 12, tzinfo=UTC
    )
    with pytest.raises(RecordProblem):
        parse_datetime(None, "x")


def test_a_bad_contact_email_names_the_configured_path() -> None:
    paths = DealFieldPaths(contact_email="Bill_To__r.Email")
    record = opportunity(1, Bill_To__r={"Email": "nobody"})
    with pytest.raises(RecordProblem) as exc:
        to_deal(record, [], paths=paths, multi_currency=True, company_currency="USD")
    assert exc.value.field == "Bill_To__r.Email"


def test_a_line_that_is_not_a_record() -> None:
    with pytest.raises(RecordProblem) as exc:
        to_deal(
            opportunity(1),
            [line(1), "junk"],
            paths=PATHS,
            multi_currency=True,
            company_currency="USD",
        )
    assert exc.value.field == "OpportunityLineItems[1]"
