"""The incremental pull against `responses`: pagination, cursors, currency, rejections."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from billsync.connectors.salesforce import DealFieldPaths, DealRejected, SalesforceDealSource
from billsync.connectors.salesforce.pull import decode_cursor, encode_cursor
from billsync.core.canonical import Deal
from billsync.core.problems import ConfigError
from billsync.core.protocols import ConnectorError, DealSource, ErrorClass
from tests.connectors.salesforce import (
    API,
    QUERY_URL,
    TOKEN_URL,
    dumps,
    error_body,
    limit_header,
    line,
    opportunity,
    query_page,
    settings,
    sf_id,
    stamp,
    token_body,
)

NEXT = "/services/data/v66.0/query/01gxx-2000"


def source(**overrides: Any) -> SalesforceDealSource:
    return SalesforceDealSource(settings(**overrides), company_currency="USD", sleep=lambda s: None)


def soql(call: Any) -> str:
    query: str = parse_qs(urlsplit(call.request.url).query)["q"][0]
    return query


def test_is_a_deal_source() -> None:
    assert isinstance(source(), DealSource)
    assert source().system == "salesforce"


def test_top_level_pagination_streams_deals_in_order_with_cursors() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        first = rsps.get(
            QUERY_URL,
            body=dumps(query_page([opportunity(n) for n in (1, 2, 3)], total=5, next_url=NEXT)),
            headers=limit_header(),
        )
        more = rsps.get(
            f"{API}/query/01gxx-2000", body=dumps(query_page([opportunity(4), opportunity(5)]))
        )
        pulled = source(query_batch_size=500).pull(None)
        firsts = [next(pulled) for _ in range(3)]
        assert len(more.calls) == 0  # lazily: page 2 is fetched only when needed
        rest = list(pulled)
        assert len(more.calls) == 1
    items = [c.item for c in [*firsts, *rest]]
    assert [i.id for i in items if isinstance(i, Deal)] == [sf_id("006", n) for n in range(1, 6)]
    assert [c.cursor for c in rest] == [
        f"2026-11-01T12:00:0{n}.000Z|{sf_id('006', n)}" for n in (4, 5)
    ]
    assert first.calls[0].request.headers["Sforce-Query-Options"] == "batchSize=500"
    assert more.calls[0].request.headers["Sforce-Query-Options"] == "batchSize=500"
    query = soql(first.calls[0])
    assert query.startswith(
        "SELECT Id, Name, AccountId, CloseDate, Amount, SystemModstamp, IsWon, "
    )
    assert "CurrencyIsoCode, Account.Id, Account.Name, Account.BillingStreet" in query
    assert "Billing_Platform__c, Account.Billing_Email__c, Account.AccountNumber" in query
    assert (
        "(SELECT Id, Product2Id, ProductCode, Name, Description, Quantity, UnitPrice, Discount, "
        "ServiceDate, SortOrder, TotalPrice FROM OpportunityLineItems ORDER BY SortOrder, Id)"
    ) in query
    assert query.endswith("FROM Opportunity WHERE IsWon = true ORDER BY SystemModstamp, Id")


def test_a_deal_with_300_lines_arrives_whole_before_it_is_yielded() -> None:
    lines = [line(n, opportunity=1) for n in range(300)]
    big = opportunity(1, lines=[])
    big["OpportunityLineItems"] = {
        "totalSize": 300,
        "done": False,
        "nextRecordsUrl": "/services/data/v66.0/query/01gyy-200",
        "records": lines[:200],
    }
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, body=dumps(query_page([big, opportunity(2)], total=3, next_url=NEXT)))
        child = rsps.get(
            f"{API}/query/01gyy-200",
            body=dumps({"totalSize": 300, "done": True, "records": lines[200:]}),
        )
        rsps.get(f"{API}/query/01gxx-2000", body=dumps(query_page([opportunity(3)])))
        pulled = source().pull(None)
        deal = next(pulled).item
        assert len(child.calls) == 1
        assert isinstance(deal, Deal)
        assert [ln.id for ln in deal.lines] == [sf_id("00k", n) for n in range(300)]
        assert [getattr(c.item, "id", None) for c in pulled] == [sf_id("006", 2), sf_id("006", 3)]


def test_overlap_window_dedupe_and_a_cursor_that_never_moves_back() -> None:
    since = encode_cursor((datetime(2026, 11, 1, 12, 0, 10, tzinfo=UTC), sf_id("006", 10)))
    rows = [opportunity(7, at=7), opportunity(10, at=10), opportunity(11, at=10)]
    again = [opportunity(11, at=10), opportunity(12, at=12)]  # re-sent across the page edge
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        first = rsps.get(QUERY_URL, body=dumps(query_page(rows, next_url=NEXT)))
        rsps.get(f"{API}/query/01gxx-2000", body=dumps(query_page(again)))
        pulled = list(source(overlap_minutes=5).pull(since))
        query = soql(first.calls[0])
    assert "SystemModstamp >= 2026-11-01T11:55:10+00:00" in query
    assert [getattr(c.item, "id", None) for c in pulled] == [
        sf_id("006", n) for n in (7, 10, 11, 12)
    ]
    assert [c.cursor for c in pulled] == [
        since,  # re-read from the overlap: the cursor stays where the pull started
        since,
        f"2026-11-01T12:00:10.000Z|{sf_id('006', 11)}",
        f"2026-11-01T12:00:12.000Z|{sf_id('006', 12)}",
    ]


def test_start_from_when_there_is_no_watermark() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        first = rsps.get(QUERY_URL, body=dumps(query_page([])))
        start = datetime.fromisoformat("2026-01-01T00:00:00+01:00")
        src = SalesforceDealSource(settings(), company_currency="USD", start_from=start)
        assert list(src.pull(None)) == []
        assert "SystemModstamp >= 2025-12-31T23:00:00+00:00" in soql(first.calls[0])


def test_cursor_round_trip_and_bad_cursor() -> None:
    position = (datetime(2026, 11, 1, 12, 0, 0, 123000, tzinfo=UTC), sf_id("006", 1))
    assert encode_cursor(position) == f"2026-11-01T12:00:00.123Z|{sf_id('006', 1)}"
    assert decode_cursor(encode_cursor(position)) == position
    assert decode_cursor("") is None and decode_cursor(None) is None
    for bad in ("2026-11-01", "yesterday|006", "2026-11-01T12:00:00|006"):
        with pytest.raises(ConnectorError) as exc:
            decode_cursor(bad)
        assert exc.value.code == "BAD_CURSOR"


def test_record_types_and_extra_where_are_escaped_into_the_query() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        first = rsps.get(QUERY_URL, body=dumps(query_page([])))
        list(
            source(
                record_types=["New_Business", 'Partner\'s "Deal"'],
                extra_where="Account.Name != 'O\\'Brien & Sons' AND StageName != 'Won \\'Big\\''",
            ).pull(None)
        )
        query = soql(first.calls[0])
    assert "RecordType.DeveloperName IN ('New_Business','Partner\\'s \\\"Deal\\\"')" in query
    assert "AND (Account.Name != 'O\\'Brien & Sons' AND StageName != 'Won \\'Big\\'')" in query


def test_bad_extra_where_is_a_config_error_at_construction() -> None:
    with pytest.raises(ConfigError) as exc:
        source(extra_where="Amount > 0) OR (IsWon = false")
    assert "salesforce.extra_where" in str(exc.value)
    assert "closes a parenthesis that was never opened" in str(exc.value)


def test_configured_field_paths_are_selected_and_read() -> None:
    paths = DealFieldPaths(
        po_number="PO_Number__c",
        terms="Payment_Terms__c",
        contact_name="Bill_To__r.Name",
        contact_email="Bill_To__r.Email",
    )
    row = opportunity(
        1,
        PO_Number__c="PO-77",
        Payment_Terms__c="Net 30",
        Bill_To__r={"attributes": {"type": "Contact"}, "Name": "Ann", "Email": "ann@x.example"},
    )
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        first = rsps.get(QUERY_URL, body=dumps(query_page([row])))
        deal = next(
            SalesforceDealSource(settings(), company_currency="USD", field_paths=paths).pull(None)
        ).item
        query = soql(first.calls[0])
    assert "PO_Number__c, Payment_Terms__c" in query and "Bill_To__r.Email" in query
    assert isinstance(deal, Deal)
    assert (deal.po_number, deal.terms) == ("PO-77", "Net 30")
    assert deal.billing_contact is not None and deal.billing_contact.email == "ann@x.example"


def test_multi_currency_auto_falls_back_once_and_remembers() -> None:
    invalid = error_body(
        "INVALID_FIELD",
        "\nSELECT Id, Name, AccountId, CloseDate, Amount, SystemModstamp, IsWon, StageName, "
        "CurrencyIsoCode\n ^\nERROR at Row:1:Column:84\nNo such column 'CurrencyIsoCode' on "
        "entity 'Opportunity'. If you are attempting to use a custom field, be sure to append "
        "the '__c' after the custom field name.",
    )
    deal_without = opportunity(1, currency=None)
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        failing = rsps.get(QUERY_URL, status=400, body=invalid)
        ok = rsps.get(QUERY_URL, body=dumps(query_page([deal_without])))
        src = source()
        deals = [c.item for c in src.pull(None)]
        assert "CurrencyIsoCode" in soql(failing.calls[0])
        assert "CurrencyIsoCode" not in soql(ok.calls[0])
        assert [d.currency for d in deals if isinstance(d, Deal)] == ["USD"]
        list(src.pull(None))  # remembered: no failing query this time
        assert len(failing.calls) == 1 and len(ok.calls) == 2


def test_multi_currency_true_does_not_fall_back_and_other_fields_are_not_excused() -> None:
    currency_error = error_body("INVALID_FIELD", "No such column 'CurrencyIsoCode' on entity")
    other_error = error_body(
        "INVALID_FIELD", "CurrencyIsoCode, Foo__c\nERROR at Row:1:Column:9\nNo such column 'Foo__c'"
    )
    for overrides, body, hint in (
        ({"multi_currency": "true"}, currency_error, "Set salesforce.multi_currency to auto"),
        ({}, other_error, "create the field"),
    ):
        with responses.RequestsMock() as rsps:
            rsps.post(TOKEN_URL, json=token_body())
            rsps.get(QUERY_URL, status=400, body=body)
            with pytest.raises(ConnectorError) as exc:
                list(source(**overrides).pull(None))
        assert exc.value.error_class is ErrorClass.INVALID_DATA
        assert hint in exc.value.message


def test_multi_currency_false_never_asks_and_uses_company_currency() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        first = rsps.get(QUERY_URL, body=dumps(query_page([opportunity(1, currency="EUR")])))
        deal = next(source(multi_currency=False).pull(None)).item
        assert "CurrencyIsoCode" not in soql(first.calls[0])
    assert isinstance(deal, Deal) and deal.currency == "USD"


def test_unrepresentable_deals_are_rejected_and_the_pull_goes_on() -> None:
    no_account = opportunity(2, Account=None)
    bad_discount = opportunity(3, lines=[{**line(1), "Discount": Decimal("120")}])
    bad_amount = opportunity(4, amount=None, lines=[])
    bad_stamp = opportunity(5, SystemModstamp="yesterday")
    odd_shape = opportunity(6, at=5, OpportunityLineItems={"done": True, "records": 7})
    rows = [opportunity(1), no_account, bad_discount, bad_amount, bad_stamp, odd_shape]
    rows.append(opportunity(6))
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, body=dumps(query_page(rows)))
        pulled = list(source().pull(None))
    rejected = [c.item for c in pulled if isinstance(c.item, DealRejected)]
    assert [(r.deal_id, r.field) for r in rejected] == [
        (sf_id("006", 2), "Account"),
        (sf_id("006", 3), "OpportunityLineItems[0].Discount"),
        (sf_id("006", 4), "Amount"),
        (sf_id("006", 5), "SystemModstamp"),
        (sf_id("006", 6), "Opportunity"),  # an unexpected shape: rejected, not fatal
    ]
    assert "120 % is outside 0–100 %" in rejected[1].reason
    assert rejected[0].revision == datetime(2026, 11, 1, 12, 0, 2, tzinfo=UTC)
    assert rejected[3].revision is None
    # The unreadable stamp does not move the cursor; the next deal does.
    assert pulled[4].cursor == pulled[3].cursor
    assert pulled[6].cursor.endswith(sf_id("006", 6))
    read = [c.item.id for c in pulled if isinstance(c.item, Deal)]
    assert read == [sf_id("006", 1), sf_id("006", 6)]


def _floats(value: Any) -> list[Any]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list | tuple):
        return [f for v in value for f in _floats(v)]
    return []


def test_money_is_decimal_everywhere_in_the_deal() -> None:
    lines = [line(1, quantity="1.5", price="0.10"), line(2, quantity="3", price="19.99")]
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(
            QUERY_URL,
            body=dumps(query_page([opportunity(1, lines=lines, amount=Decimal("60.12"))])),
        )
        deal = next(source().pull(None)).item
    assert isinstance(deal, Deal)
    assert _floats(deal.model_dump()) == []
    assert deal.amount == Decimal("60.12") and type(deal.amount) is Decimal
    assert deal.lines[0].unit_price == Decimal("0.10")
    assert deal.lines[0].discount_percent == Decimal("12.5")
    assert deal.lines[1].discount_percent is None
    assert deal.currency == "EUR"
    assert deal.revision == datetime(2026, 11, 1, 12, 0, 1, tzinfo=UTC)


def test_quota_floor_mid_pull_keeps_what_was_yielded() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(
            QUERY_URL,
            body=dumps(query_page([opportunity(1), opportunity(2)], next_url=NEXT)),
            headers=limit_header(used=95_000),
        )
        pulled = source(quota_floor_percent=10).pull(None)
        got = [next(pulled), next(pulled)]
        with pytest.raises(ConnectorError) as exc:
            next(pulled)
    assert exc.value.code == "QUOTA_FLOOR"
    assert got[-1].cursor == f"{stamp(2)[:19]}.000Z|{sf_id('006', 2)}"
