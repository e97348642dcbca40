"""`SalesforceDealSource.won_deal_ids` and `not_won`: the id-only reads reconciliation
uses (won deals in a window up to the watermark, paged; deals no longer won)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses

from billsync.connectors.salesforce import SalesforceDealSource
from billsync.connectors.salesforce.listing import NOT_FOUND
from billsync.core.protocols import CountsWonDeals, ListsWonDeals, ReadsDealStages
from tests.connectors.salesforce import (
    API,
    QUERY_URL,
    TOKEN_URL,
    dumps,
    query_page,
    settings,
    sf_id,
    token_body,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def source(**overrides: Any) -> SalesforceDealSource:
    return SalesforceDealSource(
        settings(**overrides), company_currency="USD", now=lambda: NOW, sleep=lambda s: None
    )


def soql(call: Any) -> str:
    query: str = parse_qs(urlsplit(call.request.url).query)["q"][0]
    return query


def test_the_source_has_the_reconciliation_abilities() -> None:
    src = source()
    assert isinstance(src, ListsWonDeals) and isinstance(src, ReadsDealStages)


def test_won_ids_in_the_window_up_to_the_watermark_paged() -> None:
    ids = [sf_id("006", n) for n in range(1, 4)]
    more = "/services/data/v66.0/query/01gNEXT-2000"
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        first = rsps.get(
            QUERY_URL,
            body=dumps(query_page([{"Id": ids[0]}, {"Id": ids[1]}], total=3, next_url=more)),
        )
        rsps.get(f"{API}/query/01gNEXT-2000", body=dumps(query_page([{"Id": ids[2]}])))
        src = source(won_check_days=10, record_types=["New_Business"])
        found = list(src.won_deal_ids(f"2026-11-29T08:00:00.000Z|{ids[2]}"))
    assert found == ids
    query = soql(first.calls[0])
    assert query.startswith("SELECT Id FROM Opportunity WHERE IsWon = true")
    assert "SystemModstamp >= 2026-11-20T12:00:00+00:00" in query
    assert "SystemModstamp <= 2026-11-29T08:00:00+00:00" in query
    assert "RecordType.DeveloperName IN ('New_Business')" in query
    assert query.endswith("ORDER BY SystemModstamp, Id")


def test_no_watermark_or_a_window_past_it_asks_nothing() -> None:
    with responses.RequestsMock():  # any request would fail: none registered
        src = source(won_check_days=1)
        assert list(src.won_deal_ids("")) == []
        assert list(src.won_deal_ids(f"2026-01-01T00:00:00.000Z|{sf_id('006', 1)}")) == []


def test_not_won_names_the_stage_or_not_found() -> None:
    won, lost, gone = sf_id("006", 1), sf_id("006", 2), sf_id("006", 3)
    rows = [
        {"Id": won, "StageName": "Closed Won", "IsWon": True},
        {"Id": lost, "StageName": "Closed Lost", "IsWon": False},
    ]
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        asked = rsps.get(QUERY_URL, body=dumps(query_page(rows)))
        found = source().not_won([won, lost, gone, "not-an-id"])
    assert found == {lost: "Closed Lost", gone: NOT_FOUND}
    query = soql(asked.calls[0])
    assert query == (
        f"SELECT Id, StageName, IsWon FROM Opportunity WHERE Id IN ('{won}','{lost}','{gone}')"
    )


def test_count_won_deals_is_one_count_query_in_the_pulls_scope() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        call = rsps.get(QUERY_URL, body=dumps({"totalSize": 512, "done": True, "records": []}))
        src = source(record_types=["New_Business"], extra_where="Type != 'Renewal'")
        assert isinstance(src, CountsWonDeals)
        assert src.count_won_deals() == 512
    assert soql(call.calls[0]) == (
        "SELECT COUNT() FROM Opportunity WHERE IsWon = true AND "
        "RecordType.DeveloperName IN ('New_Business') AND (Type != 'Renewal')"
    )
