"""Records, derived fields and query semantics of the Salesforce stand-in (no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from billsync.sandbox.core import Clock, SandboxContext
from billsync.sandbox.salesforce import ids, seeding
from billsync.sandbox.salesforce.cursors import QueryCursor
from billsync.sandbox.salesforce.errors import SalesforceError, WriteError
from billsync.sandbox.salesforce.rules import line_total
from billsync.sandbox.salesforce.soql_engine import plan, top_rows
from billsync.sandbox.salesforce.soql_fields import QueryError
from billsync.sandbox.salesforce.soql_parser import parse
from billsync.sandbox.salesforce.system import SalesforceSandbox


class _Sink:
    def deliver(self, provider: str, body: bytes, sign: Any) -> None:
        pass


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sf(clock: Clock, tmp_path: Any) -> SalesforceSandbox:
    context = SandboxContext(
        clock=clock,
        webhooks=_Sink(),
        base_url="https://127.0.0.1:9",
        options={"ca_bundle": str(tmp_path / "ca.pem")},
    )
    system = SalesforceSandbox(context)
    system.seed(
        {
            "fields": {"Opportunity": ["PO_Number__c", {"name": "Terms__c", "type": "picklist"}]},
            "Account": [
                {"Id": "001000000000001AAA", "Name": "O'Brien & Sons", "BillingCity": "Cork"},
                {"Id": "001000000000002AAA", "Name": "acme", "BillingCity": None},
            ],
            "Product2": [
                {"Id": "01t000000000001AAA", "Name": "Seat", "ProductCode": "SEAT"},
            ],
            "Opportunity": [
                {
                    "Id": "006000000000001AAA",
                    "Name": "Big deal",
                    "AccountId": "001000000000001AAA",
                    "StageName": "Closed Won",
                    "CloseDate": "2026-11-01",
                    "CurrencyIsoCode": "EUR",
                    "PO_Number__c": "PO-1",
                    "OpportunityLineItems": [
                        {
                            "Product2Id": "01t000000000001AAA",
                            "Quantity": 3,
                            "UnitPrice": "21.62",
                            "Discount": 15,
                        },
                        {"Product2Id": "01t000000000001AAA", "Quantity": 1, "UnitPrice": 100},
                    ],
                },
                {
                    "Id": "006000000000002AAA",
                    "Name": "No products",
                    "AccountId": "001000000000002AAA",
                    "StageName": "Prospecting",
                    "CloseDate": "2026-12-01",
                    "Amount": "5000",
                },
                {
                    "Id": "006000000000003AAA",
                    "Name": "Lost",
                    "StageName": "Closed Lost",
                    "CloseDate": "2026-10-01",
                },
            ],
        }
    )
    return system


def opportunity(sf: SalesforceSandbox, record_id: str = "006000000000001AAA") -> dict[str, Any]:
    return sf.store.tables["Opportunity"][record_id]


def query(sf: SalesforceSandbox, text: str, *, deleted: bool = False) -> dict[str, Any]:
    store = sf.store
    query_plan = plan(store.schema, parse(text), store.tables)
    rows = top_rows(store.schema, query_plan, store.tables, deleted=deleted)
    cursor = QueryCursor(query_plan, rows, 2000, deleted, "66.0", "query", store.clock.now())
    return sf.cursors.first_page(cursor)


def ids_of(sf: SalesforceSandbox, where: str) -> list[str]:
    page = query(sf, f"SELECT Id FROM Opportunity WHERE {where}")
    return [record["Id"][-4:-3] for record in page["records"]]


@pytest.mark.parametrize(
    ("quantity", "price", "discount", "expected"),
    [
        ("3", "21.62", "15", "55.13"),  # 55.131
        ("1", "0.01", "50", "0.01"),  # 0.005 rounds half up
        ("2", "0.125", None, "0.25"),
        ("7.5", "175.00", "12.5", "1148.44"),  # 1148.4375
        ("1", "-0.005", None, "-0.01"),  # half up is away from zero
    ],
)
def test_line_total_rounds_once_half_up(
    quantity: str, price: str, discount: str | None, expected: str
) -> None:
    result = line_total(Decimal(quantity), Decimal(price), Decimal(discount) if discount else None)
    assert result == Decimal(expected)


def test_seed_derives_what_salesforce_derives(sf: SalesforceSandbox) -> None:
    deal = opportunity(sf)
    assert (deal["IsWon"], deal["IsClosed"], deal["HasOpportunityLineItem"]) == (True, True, True)
    assert deal["Amount"] == Decimal("155.13")
    lines = sorted(sf.store.tables["OpportunityLineItem"].values(), key=lambda r: r["TotalPrice"])
    assert [line["TotalPrice"] for line in lines] == [Decimal("55.13"), Decimal("100.00")]
    assert {line["ProductCode"] for line in lines} == {"SEAT"}
    assert {line["Name"] for line in lines} == {"Seat"}
    assert {line["CurrencyIsoCode"] for line in lines} == {"EUR"}
    assert all(line["Id"].startswith("00k") and len(line["Id"]) == 18 for line in lines)
    lost = opportunity(sf, "006000000000003AAA")
    assert (lost["IsWon"], lost["IsClosed"]) == (False, True)
    assert lost["CurrencyIsoCode"] == "USD"  # the corporate currency


def test_fresh_ids_carry_a_valid_case_checksum() -> None:
    factory = ids.IdFactory()
    new = factory.new("006")
    assert len(new) == 18 and ids.to18(new[:15]) == new
    assert ids.checksum("001A0000006Vm9r") == "IAC"  # a documented example id


def test_amount_is_ignored_while_the_deal_has_lines(sf: SalesforceSandbox) -> None:
    definition = sf.store.schema.get("Opportunity")
    sf.store.apply(sf.store.prepare_update(definition, "006000000000001AAA", {"Amount": 1}, "api"))
    assert opportunity(sf)["Amount"] == Decimal("155.13")
    other = "006000000000002AAA"
    sf.store.apply(sf.store.prepare_update(definition, other, {"Amount": "12.345"}, "api"))
    assert opportunity(sf, other)["Amount"] == Decimal("12.35")


def test_line_change_bumps_the_deal_modstamp_only(sf: SalesforceSandbox, clock: Clock) -> None:
    before = dict(opportunity(sf))
    clock.offset += timedelta(minutes=5)
    line = next(iter(sf.store.tables["OpportunityLineItem"].values()))
    line_def = sf.store.schema.get("OpportunityLineItem")
    sf.store.apply(sf.store.prepare_update(line_def, line["Id"], {"Quantity": 4}, "api"))
    after = opportunity(sf)
    assert after["SystemModstamp"] > before["SystemModstamp"]
    assert after["LastModifiedDate"] == before["LastModifiedDate"]
    assert after["Amount"] == before["Amount"] + line["TotalPrice"] - Decimal("55.13")


def test_admin_replaces_lines_and_stamps_like_an_edit(sf: SalesforceSandbox, clock: Clock) -> None:
    clock.offset += timedelta(minutes=1)
    seeding.update_deal(
        sf.store,
        "006000000000002AAA",
        {
            "StageName": "Closed Won",
            "OpportunityLineItems": [
                {"Product2Id": "01t000000000001AAA", "Quantity": 2, "UnitPrice": "10.50"}
            ],
        },
    )
    deal = opportunity(sf, "006000000000002AAA")
    assert deal["IsWon"] and deal["Amount"] == Decimal("21.00")
    assert deal["SystemModstamp"] == deal["LastModifiedDate"] > deal["CreatedDate"]
    # Replacing with an empty list deletes the lines; the last roll-up stays.
    seeding.update_deal(sf.store, "006000000000002AAA", {"OpportunityLineItems": []})
    assert not opportunity(sf, "006000000000002AAA")["HasOpportunityLineItem"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Foo__c": 1}, "INVALID_FIELD"),
        ({"IsWon": True}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ({"Name": None}, "REQUIRED_FIELD_MISSING"),
        ({"Billing_Amount_Paid__c": "abc"}, "INVALID_TYPE_ON_FIELD_IN_RECORD"),
        ({"Billing_Invoice_Number__c": "x" * 256}, "STRING_TOO_LONG"),
        ({"AccountId": "001000000000009AAA"}, "INVALID_CROSS_REFERENCE_KEY"),
        ({"AccountId": "006000000000002AAA"}, "MALFORMED_ID"),
        ({"CurrencyIsoCode": "USD"}, "FIELD_INTEGRITY_EXCEPTION"),
        ({"CurrencyIsoCode": "usd"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
    ],
)
def test_api_write_errors(sf: SalesforceSandbox, body: dict[str, Any], code: str) -> None:
    definition = sf.store.schema.get("Opportunity")
    with pytest.raises(WriteError) as raised:
        sf.store.prepare_update(definition, "006000000000001AAA", body, "api")
    assert raised.value.status_code == code


def test_unknown_and_deleted_targets(sf: SalesforceSandbox) -> None:
    definition = sf.store.schema.get("Opportunity")
    for record_id, code in [
        ("006000000000009AAA", "INVALID_CROSS_REFERENCE_KEY"),
        ("bad", "MALFORMED_ID"),
        ("001000000000001AAA", "MALFORMED_ID"),
    ]:
        with pytest.raises(WriteError) as raised:
            sf.store.prepare_update(definition, record_id, {}, "api")
        assert raised.value.status_code == code
    sf.store.delete(definition, "006000000000001AAA")
    with pytest.raises(WriteError) as raised:
        sf.store.prepare_update(definition, "006000000000001AAA", {}, "api")
    assert raised.value.status_code == "ENTITY_IS_DELETED"


def test_api_line_rules(sf: SalesforceSandbox) -> None:
    line_def = sf.store.schema.get("OpportunityLineItem")
    base = {"OpportunityId": "006000000000002AAA", "Product2Id": "01t000000000001AAA"}
    for body, code in [
        ({**base, "Quantity": 1, "UnitPrice": 1, "TotalPrice": 1}, "FIELD_INTEGRITY_EXCEPTION"),
        ({**base, "Quantity": 0, "UnitPrice": 1}, "FIELD_INTEGRITY_EXCEPTION"),
        ({**base, "Quantity": 1, "UnitPrice": 1, "Discount": 120}, "NUMBER_OUTSIDE_VALID_RANGE"),
        (
            {**base, "Quantity": 1, "UnitPrice": 1, "ProductCode": "X"},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
        (
            {"OpportunityId": "006000000000002AAA", "Quantity": 1, "UnitPrice": 1},
            "REQUIRED_FIELD_MISSING",
        ),
    ]:
        with pytest.raises(WriteError) as raised:
            sf.store.prepare_create(line_def, body, "api")
        assert raised.value.status_code == code, body
    line = sf.store.apply(
        sf.store.prepare_create(line_def, {**base, "Quantity": 4, "TotalPrice": 90}, "api")
    )
    assert (line["UnitPrice"], line["TotalPrice"]) == (Decimal("22.50"), Decimal("90.00"))


def test_multi_currency_off_removes_currency(sf: SalesforceSandbox) -> None:
    sf.reset()
    sf.seed({"multi_currency": False, "Account": [{"Name": "A"}]})
    with pytest.raises(QueryError) as raised:
        query(sf, "SELECT CurrencyIsoCode FROM Account")
    assert raised.value.error_code == "INVALID_FIELD"
    with pytest.raises(ValueError, match="INVALID_FIELD"):
        sf.seed({"Account": [{"Name": "B", "CurrencyIsoCode": "USD"}]})


def test_seed_errors_name_the_record(sf: SalesforceSandbox) -> None:
    with pytest.raises(ValueError, match="Opportunity X1: REQUIRED_FIELD_MISSING"):
        sf.seed({"Opportunity": [{"Id": "X1", "Name": "n", "StageName": "s"}]})
    with pytest.raises(ValueError, match="unknown keys"):
        sf.seed({"Contact": []})
    with pytest.raises(ValueError, match="end in __c"):
        sf.seed({"fields": {"Opportunity": ["NoSuffix"]}})


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("IsWon = true", ["1"]),
        ("IsClosed = true AND IsWon = false", ["3"]),
        ("Name = 'big DEAL'", ["1"]),  # text compares ignore case
        ("Amount != 155.13", ["2", "3"]),  # null Amount is "not equal"
        ("Amount < 1000", ["1"]),  # … but never "less than"
        ("Amount = null", ["3"]),
        ("Account.Name LIKE 'o\\'brien%'", ["1"]),
        ("Account.BillingCity = null", ["2", "3"]),
        ("Id IN ('006000000000002', '006000000000003AAA')", ["2", "3"]),  # 15-char ids too
        ("StageName NOT IN ('Closed Won', 'Closed Lost')", ["2"]),
        ("NOT (StageName = 'Prospecting')", ["1", "3"]),
        ("CloseDate >= 2026-11-01 AND CloseDate < 2026-12-01", ["1"]),
        ("(IsWon = true OR Amount > 1000) AND CloseDate > 2026-10-15", ["1", "2"]),
        ("CreatedDate > 2020-01-01T00:00:00-08:00", ["1", "2", "3"]),
        ("PO_Number__c = 'po-1'", ["1"]),
        ("Name LIKE '_ost'", ["3"]),
    ],
)
def test_where_semantics(sf: SalesforceSandbox, where: str, expected: list[str]) -> None:
    assert ids_of(sf, where) == expected


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        (
            "SELECT Foo FROM Opportunity",
            "INVALID_FIELD",
            "No such column 'Foo' on entity 'Opportunity'",
        ),
        (
            "SELECT Foo.Name FROM Opportunity",
            "INVALID_FIELD",
            "Didn't understand relationship 'Foo'",
        ),
        ("SELECT Id FROM Contact", "INVALID_TYPE", "sObject type 'Contact' is not supported"),
        (
            "SELECT Id, (SELECT Id FROM Lines) FROM Opportunity",
            "INVALID_TYPE",
            "relationship 'Lines'",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = '2026-11-01'",
            "INVALID_FIELD",
            "must be of type date and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Name = 5",
            "INVALID_FIELD",
            "must be of type string and should be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Opportunity WHERE SystemModstamp > 2026-11-01",
            "INVALID_FIELD",
            "must be of type dateTime",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Id = 'nope'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Billing_Sync_Error__c = 'x'",
            "INVALID_FIELD",
            "can not be filtered",
        ),
        ("SELECT Id, Id FROM Opportunity", "MALFORMED_QUERY", "duplicate field selected"),
        ("SELECT Id FROM Opportunity OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "2000"),
        (
            "SELECT Id FROM Opportunity WHERE IsWon > true",
            "INVALID_QUERY_FILTER_OPERATOR",
            "boolean",
        ),
    ],
)
def test_query_errors(sf: SalesforceSandbox, text: str, code: str, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        query(sf, text)
    assert raised.value.error_code == code
    assert message in raised.value.message


def test_order_by_nulls_and_direction(sf: SalesforceSandbox) -> None:
    def order(clause: str) -> list[str]:
        page = query(sf, f"SELECT Id FROM Opportunity ORDER BY {clause}")
        return [record["Id"][-4:-3] for record in page["records"]]

    assert order("Amount") == ["3", "1", "2"]  # ASC: nulls first
    assert order("Amount DESC") == ["2", "1", "3"]  # DESC: nulls last
    assert order("Amount ASC NULLS LAST") == ["1", "2", "3"]
    assert order("Amount DESC NULLS FIRST") == ["3", "2", "1"]
    assert order("Account.Name, CloseDate DESC") == ["3", "2", "1"]  # 'acme' < "O'Brien"
    page = query(sf, "SELECT Id FROM Opportunity ORDER BY CloseDate LIMIT 1 OFFSET 1")
    assert [r["Id"] for r in page["records"]] == ["006000000000001AAA"]
    assert page["totalSize"] == 1


def test_row_shape_like_salesforce(sf: SalesforceSandbox) -> None:
    page = query(
        sf,
        "SELECT Name, Account.Name, Amount, Account.BillingCity, CreatedDate, "
        "(SELECT Quantity, TotalPrice, Product2.ProductCode FROM OpportunityLineItems "
        "WHERE Quantity > 1) FROM Opportunity ORDER BY Name",
    )
    big, lost, no_products = page["records"]
    assert list(big) == [
        "attributes",
        "Name",
        "Account",
        "Amount",
        "CreatedDate",
        "OpportunityLineItems",
    ]
    assert big["attributes"] == {
        "type": "Opportunity",
        "url": "/services/data/v66.0/sobjects/Opportunity/006000000000001AAA",
    }
    assert big["Account"] == {
        "attributes": {
            "type": "Account",
            "url": "/services/data/v66.0/sobjects/Account/001000000000001AAA",
        },
        "Name": "O'Brien & Sons",
        "BillingCity": "Cork",
    }
    assert str(big["Amount"]) == "155.13"
    assert datetime.strptime(big["CreatedDate"], "%Y-%m-%dT%H:%M:%S.%f%z").tzinfo is not None
    assert big["CreatedDate"].endswith("+0000")
    lines = big["OpportunityLineItems"]
    assert (lines["totalSize"], lines["done"]) == (1, True)
    assert lines["records"][0]["Quantity"] == Decimal("3.0")
    assert str(lines["records"][0]["Quantity"]) == "3.0"
    assert lines["records"][0]["Product2"]["ProductCode"] == "SEAT"
    assert lost["Account"] is None
    assert no_products["OpportunityLineItems"] is None  # no children: null, not empty


def test_query_all_includes_deleted(sf: SalesforceSandbox) -> None:
    sf.store.delete(sf.store.schema.get("Opportunity"), "006000000000003AAA")
    assert query(sf, "SELECT Id FROM Opportunity")["totalSize"] == 2
    every = query(sf, "SELECT Id, IsDeleted FROM Opportunity", deleted=True)
    assert [r["IsDeleted"] for r in every["records"]] == [False, False, True]
    assert query(sf, "SELECT COUNT() FROM Opportunity WHERE IsWon = true") == {
        "totalSize": 1,
        "done": True,
        "records": [],
    }


def test_snapshot_and_reset(sf: SalesforceSandbox) -> None:
    state = sf.snapshot()
    assert {name: len(rows) for name, rows in state.items()} == {
        "Account": 2,
        "Product2": 1,
        "Opportunity": 3,
        "OpportunityLineItem": 2,
    }
    assert state["Opportunity"][0]["Amount"] == Decimal("155.13")
    sf.reset()
    assert all(not rows for rows in sf.snapshot().values())
    # The seed's custom fields went with the records.
    assert sf.store.schema.get("Opportunity").field("PO_Number__c") is None


def test_endpoint_names(sf: SalesforceSandbox) -> None:
    name = sf.endpoint_name
    assert name("POST", "/services/oauth2/token") == "POST oauth2/token"
    assert name("GET", "/services/data/") == "GET versions"
    assert name("GET", "/services/data/v66.0/query/") == "GET query"
    assert name("GET", "/services/data/v66.0/query/01g5g0000000001AAA-2000") == (
        "GET query/{locator}"
    )
    assert name("PATCH", "/services/data/v66.0/sobjects/Opportunity/006000000000001AAA") == (
        "PATCH sobjects/Opportunity/{id}"
    )
    assert name("GET", "/services/data/v66.0/sobjects/Opportunity/describe") == (
        "GET sobjects/Opportunity/describe"
    )
    assert name("PATCH", "/services/data/v66.0/composite/sobjects") == "PATCH composite/sobjects"
    assert name("GET", "/services/data/v66.0/limits/") == "GET limits"


def test_a_thousand_deal_seed_loads_fast(clock: Clock, tmp_path: Any) -> None:
    import time

    from billsync.sandbox.generate import GenerateOptions, generate_seed

    seed = generate_seed(GenerateOptions(deals=1000))["salesforce"]
    context = SandboxContext(clock=clock, webhooks=_Sink(), base_url="https://127.0.0.1:9")
    system = SalesforceSandbox(context)
    started = time.perf_counter()
    system.seed(seed)
    assert time.perf_counter() - started < 2
    assert len(system.store.tables["Opportunity"]) == 1000
    no_lines = [d for d in seed["Opportunity"] if "OpportunityLineItems" not in d]
    for deal in no_lines:
        assert system.store.tables["Opportunity"][deal["Id"]]["Amount"] == deal["Amount"]
    when = datetime(2020, 1, 1, tzinfo=UTC)
    assert all(d["SystemModstamp"] > when for d in system.store.tables["Opportunity"].values())


def test_an_eleventh_open_cursor_releases_the_oldest(sf: SalesforceSandbox) -> None:
    sf.seed({"Account": [{"Name": f"Account {n}"} for n in range(2100)]})
    locators = []
    for _ in range(11):
        page = query(sf, "SELECT Id FROM Account")
        assert len(page["records"]) == 2000
        locators.append(page["nextRecordsUrl"].rsplit("/", 1)[1])
    with pytest.raises(SalesforceError) as raised:
        sf.cursors.next_page(locators[0])
    assert raised.value.error_code == "INVALID_QUERY_LOCATOR"
    last = sf.cursors.next_page(locators[-1])
    assert (last["done"], len(last["records"]), last["totalSize"]) == (True, 102, 2102)
