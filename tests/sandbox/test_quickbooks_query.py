"""The QBO query language: tokenizer, parser and evaluator (no sandbox process)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from billsync.sandbox.quickbooks.errors import QboFault
from billsync.sandbox.quickbooks.fixtures import seed_realm
from billsync.sandbox.quickbooks.operations import Operations
from billsync.sandbox.quickbooks.query import Condition, parse, tokenize
from billsync.sandbox.quickbooks.search import run
from billsync.sandbox.quickbooks.store import Realm
from billsync.sandbox.quickbooks.system import _specs


def test_full_statement() -> None:
    query = parse(
        "select * from Customer where DisplayName = 'O\\'Brien' AND Active IN (true, false) "
        "AND Balance >= 10.5 ORDERBY MetaData.LastUpdatedTime DESC, Id "
        "STARTPOSITION 11 MAXRESULTS 10"
    )
    assert query.entity == "Customer"
    assert query.where == (
        Condition("DisplayName", "=", ("O'Brien",)),
        Condition("Active", "IN", (True, False)),
        Condition("Balance", ">=", (Decimal("10.5"),)),
    )
    assert query.order == (("MetaData.LastUpdatedTime", True), ("Id", False))
    assert (query.start, query.max_results) == (11, 10)


def test_count_defaults_and_sdk_forms() -> None:
    count = parse("SELECT COUNT(*) FROM Invoice")
    assert count.count and count.max_results == 100 and count.start == 1
    # python-quickbooks Item.all(): "SELECT *, Sku FROM Item ORDER BY Name MAXRESULTS 100"
    items = parse("SELECT *, Sku FROM Item ORDER BY Name MAXRESULTS 100")
    assert items.fields is None and items.order == (("Name", False),)
    projected = parse("SELECT Id, DisplayName FROM Customer")
    assert projected.fields == ("Id", "DisplayName")


def test_maxresults_is_capped_at_1000() -> None:
    assert parse("SELECT * FROM Item MAXRESULTS 5000").max_results == 1000


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM Invoice WHERE TotalAmt > 10 OR Balance = 0",
        "SELECT * FROM Invoice WHERE NOT Balance = 0",
        "SELECT * FROM Invoice WHERE Balance != 0",
        "SELECT * FROM",
        "SELECT * FROM Invoice WHERE DocNumber = 'unterminated",
        "SELECT * FROM Invoice GROUP BY CustomerRef",
        "DELETE FROM Invoice",
        "SELECT * FROM Invoice STARTPOSITION x",
    ],
)
def test_parse_errors_are_fault_4000(text: str) -> None:
    with pytest.raises(QboFault) as caught:
        parse(text)
    assert caught.value.code == "4000"
    assert caught.value.message == "Error parsing query"
    assert "QueryParserError" in caught.value.detail


def test_tokens_carry_columns() -> None:
    tokens = tokenize("SELECT * FROM Item WHERE Name LIKE 'A%'")
    assert [t.kind for t in tokens] == [
        "word", "punct", "word", "word", "word", "word", "word", "string", "end"
    ]  # fmt: skip
    assert tokens[-2].column == 36


@pytest.fixture
def realm() -> Realm:
    realm = Realm("1")
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    seed_realm(
        Operations(_specs()),
        realm,
        now,
        {
            "Account": [{"Id": "1", "Name": "Services", "AccountType": "Income"}],
            "Item": [
                {"Name": f"Widget {n:02d}", "Sku": f"W-{n}", "UnitPrice": Decimal(n),
                 "IncomeAccountRef": {"value": "1"}, "Active": n != 7}
                for n in range(1, 26)
            ],
            "Customer": [
                {"DisplayName": "O'Brien & Sons"},
                {"DisplayName": "acme corp", "PrimaryEmailAddr": {"Address": "ap@acme.test"}},
            ],
        },
    )  # fmt: skip
    return realm


def names(response: dict[str, Any]) -> list[str]:
    return [r.get("Name") or r.get("DisplayName") for r in response.get("Item", [])] or [
        r["DisplayName"] for r in response.get("Customer", [])
    ]


def test_paging_is_one_based_and_skips_inactive(realm: Realm) -> None:
    first = run(realm, parse("SELECT * FROM Item STARTPOSITION 1 MAXRESULTS 10"))
    assert first["startPosition"] == 1 and first["maxResults"] == 10
    assert names(first)[0] == "Widget 01"
    third = run(realm, parse("SELECT * FROM Item STARTPOSITION 21 MAXRESULTS 10"))
    assert len(third["Item"]) == 4  # 25 items, one inactive
    assert run(realm, parse("SELECT * FROM Item STARTPOSITION 30")) == {}
    assert run(realm, parse("SELECT COUNT(*) FROM Item")) == {"totalCount": 24}
    both = run(realm, parse("SELECT COUNT(*) FROM Item WHERE Active IN (true, false)"))
    assert both == {"totalCount": 25}
    inactive = run(realm, parse("SELECT * FROM Item WHERE Active = false"))
    assert names(inactive) == ["Widget 07"]


def test_comparisons_like_in_and_order(realm: Realm) -> None:
    cheap = run(realm, parse("SELECT * FROM Item WHERE UnitPrice < '3' ORDERBY UnitPrice DESC"))
    assert names(cheap) == ["Widget 02", "Widget 01"]
    like = run(realm, parse("SELECT * FROM Item WHERE Name LIKE '%get 1%' AND UnitPrice >= 15"))
    assert names(like) == ["Widget 15", "Widget 16", "Widget 17", "Widget 18", "Widget 19"]
    chosen = run(realm, parse("SELECT * FROM Item WHERE Sku IN ('W-3', 'W-5')"))
    assert names(chosen) == ["Widget 03", "Widget 05"]
    by_id = run(realm, parse("SELECT * FROM Item WHERE Id IN ('3', '4') ORDERBY Id DESC"))
    assert [r["Id"] for r in by_id["Item"]] == ["4", "3"]


def test_strings_escapes_refs_and_case(realm: Realm) -> None:
    escaped = run(realm, parse("SELECT * FROM Customer WHERE DisplayName = 'O\\'Brien & Sons'"))
    assert names(escaped) == ["O'Brien & Sons"]
    # QBO's collation is case-insensitive.
    assert names(run(realm, parse("SELECT * FROM Customer WHERE DisplayName = 'ACME CORP'"))) == [
        "acme corp"
    ]
    email = run(realm, parse("SELECT * FROM Customer WHERE PrimaryEmailAddr = 'ap@acme.test'"))
    assert names(email) == ["acme corp"]


def test_datetimes_compare_as_instants(realm: Realm) -> None:
    # Stored as 2026-03-01T05:00:00-07:00; the same instant in UTC and naive company time.
    for literal in ("2026-03-01T12:00:00Z", "2026-03-01T05:00:00", "2026-03-01"):
        query = f"SELECT COUNT(*) FROM Item WHERE MetaData.LastUpdatedTime >= '{literal}'"
        assert run(realm, parse(query)) == {"totalCount": 24}
    later = "SELECT COUNT(*) FROM Item WHERE MetaData.CreateTime > '2026-03-01T12:00:01Z'"
    assert run(realm, parse(later)) == {"totalCount": 0}


def test_validation_errors_are_4001(realm: Realm) -> None:
    for text in (
        "SELECT * FROM Gadget",
        "SELECT * FROM Invoice WHERE PrivateNote = 'x'",
        "SELECT * FROM Item ORDERBY Colour",
    ):
        with pytest.raises(QboFault) as caught:
            run(realm, parse(text))
        assert caught.value.code == "4001"


def test_projection(realm: Realm) -> None:
    response = run(realm, parse("SELECT Name, Sku FROM Item MAXRESULTS 1"))
    assert response["Item"] == [
        {"Name": "Widget 01", "Sku": "W-1", "domain": "QBO", "sparse": True}
    ]
