"""`SalesforceDealSource.fetch_deals`: the re-read of known deals by Id (the retry queue).

Against `responses`: the query is the pull's with ``Id IN (...)`` in place of the
watermark, ids go in chunks that keep each GET inside Salesforce's limits, child lines are
followed like the pull's, and malformed ids are skipped with a warning. One test runs
against the sandbox's Salesforce stand-in.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import responses
import structlog
from responses import matchers

from billsync.connectors.salesforce import DealRejected, SalesforceDealSource, pull
from billsync.connectors.salesforce.pull import (
    FETCH_CHUNK_IDS,
    FETCH_QUERY_URL_BYTES,
    is_salesforce_id,
)
from billsync.connectors.salesforce.settings import SalesforceSettings
from billsync.connectors.salesforce.soql import build_pull_query
from billsync.core.canonical import Deal
from billsync.core.protocols import ConnectorError
from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from tests.connectors.salesforce import (
    API,
    QUERY_URL,
    TOKEN_URL,
    dumps,
    error_body,
    line,
    opportunity,
    query_page,
    settings,
    sf_id,
    token_body,
)
from tests.sandbox.harness import start_in_thread

_IN_LIST = re.compile(r"WHERE Id IN \(([^)]*)\) AND ")


def source(**overrides: Any) -> SalesforceDealSource:
    return SalesforceDealSource(settings(**overrides), company_currency="USD", sleep=lambda s: None)


def soql(call: Any) -> str:
    query: str = parse_qs(urlsplit(call.request.url).query)["q"][0]
    return query


def queried_ids(query: str) -> list[str]:
    match = _IN_LIST.search(query)
    assert match, query
    return [value.strip("'") for value in match.group(1).split(",")]


def by_id(rows: dict[str, dict[str, Any]]) -> Any:
    """A /query callback answering each chunk with the rows whose Id it asks for."""

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        asked = queried_ids(parse_qs(urlsplit(request.url).query)["q"][0])
        return 200, {}, dumps(query_page([rows[i] for i in asked if i in rows]))

    return answer


# --- query shape -------------------------------------------------------------------


def test_the_query_is_the_pull_query_with_an_id_filter() -> None:
    scope = {
        "record_types": ["New_Business"],
        "extra_where": "Account.Name != 'O\\'Brien & Sons'",
        "query_batch_size": 300,
    }
    ids = [sf_id("006", 1), sf_id("006", 2)]
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        pulled = rsps.get(QUERY_URL, body=dumps(query_page([])))
        fetched = rsps.get(QUERY_URL, body=dumps(query_page([opportunity(1), opportunity(2)])))
        src = source(**scope)
        assert list(src.pull(None)) == []
        deals = list(src.fetch_deals(ids))
    pull_query, fetch_query = soql(pulled.calls[0]), soql(fetched.calls[0])
    # The same fields, subquery, scope and order; only the Id filter is added.
    assert fetch_query == pull_query.replace(
        "WHERE IsWon = true", f"WHERE Id IN ('{ids[0]}','{ids[1]}') AND IsWon = true"
    )
    assert "(SELECT Id, Product2Id, ProductCode, Name, Description, Quantity" in fetch_query
    assert "RecordType.DeveloperName IN ('New_Business')" in fetch_query
    assert "AND (Account.Name != 'O\\'Brien & Sons')" in fetch_query
    assert "SystemModstamp >=" not in fetch_query  # no watermark, no cursor
    assert fetched.calls[0].request.headers["Sforce-Query-Options"] == "batchSize=300"
    assert all(isinstance(d, Deal) for d in deals)
    assert [d.id for d in deals if isinstance(d, Deal)] == ids
    assert deals[0] == _pull_one(opportunity(1))  # the pull's conversion


def _pull_one(row: dict[str, Any]) -> Deal | DealRejected:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, body=dumps(query_page([row])))
        return next(source().pull(None)).item


def test_absent_deals_are_simply_missing_and_rejections_come_through() -> None:
    rows = {
        sf_id("006", 1): opportunity(1),
        sf_id("006", 3): opportunity(3, Account=None),  # unrepresentable: a rejection
    }
    ids = [sf_id("006", n) for n in (1, 2, 3)]  # 2: deleted or no longer won
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.add_callback(responses.GET, QUERY_URL, callback=by_id(rows))
        items = list(source().fetch_deals(ids))
    assert [type(i) for i in items] == [Deal, DealRejected]
    rejected = items[1]
    assert isinstance(rejected, DealRejected)
    assert (rejected.deal_id, rejected.field) == (sf_id("006", 3), "Account")


def test_values_go_through_format_soql() -> None:
    # Only id-shaped values reach the query, but they are still formatted, not pasted.
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        call = rsps.get(QUERY_URL, body=dumps(query_page([])))
        assert list(source().fetch_deals(["0065g00000AbCdE"])) == []
    assert "WHERE Id IN ('0065g00000AbCdE') AND IsWon = true" in soql(call.calls[0])


def test_the_builder_escapes_ids_and_refuses_an_empty_list() -> None:
    query = build_pull_query(
        opportunity_fields=["Id"], line_fields=["Id"], since=None, ids=["a'b", "c"]
    )
    assert "WHERE Id IN ('a\\'b','c') AND IsWon = true ORDER BY" in query
    with pytest.raises(ValueError, match="ids is empty"):
        build_pull_query(opportunity_fields=["Id"], line_fields=["Id"], since=None, ids=[])


# --- chunking ----------------------------------------------------------------------


def test_ids_go_in_chunks_that_fit_the_request_limits_and_stream() -> None:
    ids = [sf_id("006", n) for n in range(1, 1201)]
    rows = {i: opportunity(n, lines=[]) for n, i in enumerate(ids, 1) if n % 3}
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        query = rsps.add_callback(responses.GET, QUERY_URL, callback=by_id(rows))
        fetched = source().fetch_deals(ids)
        first = next(fetched)
        assert len(query.calls) == 1  # streaming: the next chunk waits until it is needed
        rest = list(fetched)
        queries = [soql(c) for c in query.calls]
    assert [d.id for d in [first, *rest] if isinstance(d, Deal)] == list(rows)
    chunks = [queried_ids(q) for q in queries]
    assert [i for chunk in chunks for i in chunk] == ids  # every id once, in order
    assert len(chunks) == math.ceil(len(ids) / len(chunks[0])) >= 3
    for q, chunk in zip(queries, chunks, strict=True):
        assert len(chunk) <= FETCH_CHUNK_IDS
        assert len(urlencode({"q": q})) <= FETCH_QUERY_URL_BYTES
        assert len(q) < 100_000
    # The budget is used, not wasted: one more id would not have fitted.
    assert len(urlencode({"q": queries[0]})) + 27 > FETCH_QUERY_URL_BYTES or (
        len(chunks[0]) == FETCH_CHUNK_IDS
    )


def test_a_long_scope_makes_smaller_chunks() -> None:
    fragment = " OR ".join(f"Account.Name = 'Customer number {n:04d}'" for n in range(120))
    ids = [sf_id("006", n) for n in range(1, 601)]
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        query = rsps.get(QUERY_URL, body=dumps(query_page([])))
        assert list(source(extra_where=fragment).fetch_deals(ids)) == []
        queries = [soql(c) for c in query.calls]
    sizes = [len(queried_ids(q)) for q in queries]
    assert sum(sizes) == 600 and max(sizes) < 400
    assert all(len(urlencode({"q": q})) <= FETCH_QUERY_URL_BYTES for q in queries)


def test_a_scope_too_long_for_even_one_id_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pull, "FETCH_QUERY_URL_BYTES", 500)
    with pytest.raises(ConnectorError) as exc:
        list(source().fetch_deals([sf_id("006", 1)]))
    assert exc.value.code == "QUERY_TOO_LONG"
    assert "salesforce.extra_where" in exc.value.message


def test_chunk_count_follows_the_id_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pull, "FETCH_CHUNK_IDS", 2)
    ids = [sf_id("006", n) for n in range(1, 6)]
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        query = rsps.get(QUERY_URL, body=dumps(query_page([])))
        list(source().fetch_deals(ids))
        chunks = [queried_ids(soql(c)) for c in query.calls]
    assert chunks == [ids[0:2], ids[2:4], ids[4:5]]


# --- pagination and currency, shared with the pull ----------------------------------


def test_child_and_top_level_pagination_are_the_pulls() -> None:
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
        rsps.get(
            QUERY_URL,
            body=dumps(
                query_page(
                    [big, opportunity(2)],
                    total=3,
                    next_url="/services/data/v66.0/query/01gxx-2000",
                )
            ),
        )
        child = rsps.get(
            f"{API}/query/01gyy-200",
            body=dumps({"totalSize": 300, "done": True, "records": lines[200:]}),
            match=[matchers.header_matcher({"Sforce-Query-Options": "batchSize=2000"})],
        )
        more = rsps.get(f"{API}/query/01gxx-2000", body=dumps(query_page([opportunity(3)])))
        fetched = source().fetch_deals([sf_id("006", n) for n in (1, 2, 3)])
        deal = next(fetched)
        assert len(child.calls) == 1 and len(more.calls) == 0  # whole before it is yielded
        assert isinstance(deal, Deal)
        assert [ln.id for ln in deal.lines] == [sf_id("00k", n) for n in range(300)]
        assert [getattr(d, "id", None) for d in fetched] == [sf_id("006", 2), sf_id("006", 3)]
        assert len(more.calls) == 1


def test_single_currency_fallback_is_shared_with_the_pull() -> None:
    invalid = error_body(
        "INVALID_FIELD", "No such column 'CurrencyIsoCode' on entity 'Opportunity'."
    )
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        failing = rsps.get(QUERY_URL, status=400, body=invalid)
        ok = rsps.get(QUERY_URL, body=dumps(query_page([opportunity(1, currency=None)])))
        src = source()
        deals = list(src.fetch_deals([sf_id("006", 1)]))
        list(src.fetch_deals([sf_id("006", 1)]))
    assert "CurrencyIsoCode" in soql(failing.calls[0])
    assert all("CurrencyIsoCode" not in soql(c) for c in ok.calls) and len(ok.calls) == 2
    assert len(failing.calls) == 1  # remembered for the client's life
    assert isinstance(deals[0], Deal) and deals[0].currency == "USD"


# --- id validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("006000000000001AAA", True),
        ("0065g00000AbCdE", True),
        ("006000000000001", True),
        ("", False),
        ("006000000000001AA", False),  # 17
        ("006000000000001AAAA", False),  # 19
        ("0060000000000'1AAA", False),
        ("006000000000001 AA", False),
        ("0065g00000AbCdé", False),
        (None, False),
        (6000000000001, False),
    ],
)
def test_id_shape(value: Any, ok: bool) -> None:
    assert is_salesforce_id(value) is ok


def test_malformed_ids_are_skipped_with_a_warning_and_duplicates_read_once() -> None:
    good = [sf_id("006", 1), "0065g00000AbCdE"]
    bad: list[Any] = ["", "x' OR IsWon = false OR Id = 'y", "006000000000001AA", None]
    with structlog.testing.capture_logs() as logs, responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        call = rsps.get(QUERY_URL, body=dumps(query_page([])))
        list(source().fetch_deals([good[0], *bad, good[1], good[0]]))
    assert queried_ids(soql(call.calls[0])) == good
    assert len(call.calls) == 1
    warnings = [e for e in logs if e["event"] == "salesforce.fetch_bad_ids"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert warnings[0]["count"] == 4
    assert "\"x' OR IsWon = false OR Id = 'y\"" in warnings[0]["ids"]


def test_no_valid_ids_means_no_call() -> None:
    with responses.RequestsMock() as rsps:  # any request would fail: none is registered
        assert list(source().fetch_deals([])) == []
        assert list(source().fetch_deals(["not-an-id"])) == []
        assert len(rsps.calls) == 0
    with pytest.raises(TypeError, match="not one str"):
        list(source().fetch_deals(sf_id("006", 1)))


# --- against the sandbox -----------------------------------------------------------

SANDBOX_SYSTEM = "billsync.sandbox.salesforce.system:SalesforceSandbox"


def test_fetch_against_the_sandbox(tmp_path_factory: pytest.TempPathFactory) -> None:
    seed = generate_seed(GenerateOptions(deals=1000, random_seed=21))["salesforce"]
    opportunities = seed["Opportunity"]
    big = {**next(o for o in opportunities if o["StageName"] == "Closed Won")}
    base = big.get("OpportunityLineItems") or next(
        o["OpportunityLineItems"] for o in opportunities if o.get("OpportunityLineItems")
    )
    big["Id"] = "006000000005000AAA"
    big["OpportunityLineItems"] = [
        {**base[0], "Id": f"00k{n:012d}BBB", "SortOrder": n, "Quantity": Decimal(n + 1)}
        for n in range(300)
    ]
    seed["Opportunity"] = [*opportunities, big]
    won = [o["Id"] for o in seed["Opportunity"] if o["StageName"] == "Closed Won"]
    lost = [o["Id"] for o in seed["Opportunity"] if o["StageName"] != "Closed Won"]
    assert len(won) > 300 and lost
    missing = "006000000009999AAA"  # well-formed, not in the org
    asked = [*lost[:50], missing, "not an id", *won]

    with start_in_thread(
        tmp_path_factory.mktemp("sf-fetch"), systems={"salesforce": SANDBOX_SYSTEM}
    ) as runner:
        admin_url = runner.info["admin_url"]

        def admin(method: str, path: str, body: Any = None) -> Any:
            data = jsonutil.dumps(body) if body is not None else None
            response = requests.request(method, f"{admin_url}{path}", data=data, timeout=60)
            assert response.status_code < 300, response.text
            return jsonutil.loads(response.content)

        admin("POST", "/_sandbox/seed", {"salesforce": seed})
        section = runner.sandbox.systems["salesforce"].config_section()
        with SalesforceDealSource(
            SalesforceSettings(**section), company_currency="USD", sleep=lambda s: None
        ) as src:
            pulled = {c.item.id: c.item for c in src.pull(None) if isinstance(c.item, Deal)}
            admin("DELETE", "/_sandbox/calls")
            fetched = list(src.fetch_deals(asked))
            calls = admin("GET", "/_sandbox/calls")["systems"]["salesforce"]

    deals = [d for d in fetched if isinstance(d, Deal)]
    assert not [d for d in fetched if isinstance(d, DealRejected)]
    assert {d.id for d in deals} == set(won) == set(pulled)  # lost and missing are absent
    assert all(d == pulled[d.id] for d in deals)  # the pull's conversion, field for field
    whole = next(d for d in deals if d.id == big["Id"])
    assert [ln.quantity for ln in whole.lines] == [Decimal(n + 1) for n in range(300)]
    # 1,002 valid ids in three chunks (421 + 421 + 160: the URL budget, not the 500 cap);
    # pages and the 300-line deal's own child nextRecordsUrl are followed.
    assert calls["GET query"] == 3
    assert calls["GET query/{locator}"] >= 1
