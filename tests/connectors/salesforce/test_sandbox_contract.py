"""Contract tests against the sandbox's Salesforce stand-in (HTTPS, local CA, real SDK).

One sandbox serves the module; each test resets its records. Seeds are realistic
(`billsync.sandbox.generate`) and travel through the admin API as exact-decimal JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from billsync.connectors.salesforce import DealRejected, SalesforceDealSource, WriteBackFields
from billsync.connectors.salesforce.pull import decode_cursor
from billsync.connectors.salesforce.settings import SalesforceSettings
from billsync.core.canonical import Deal, DealWriteBack, InvoiceStatus
from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from tests.sandbox.harness import start_in_thread

SYSTEM = "billsync.sandbox.salesforce.system:SalesforceSandbox"


class Org:
    def __init__(self, runner: Any) -> None:
        self.admin_url = runner.info["admin_url"]
        self.section = runner.sandbox.systems["salesforce"].config_section()
        self.sources: list[SalesforceDealSource] = []

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        data = jsonutil.dumps(body) if body is not None else None
        response = requests.request(method, f"{self.admin_url}{path}", data=data, timeout=60)
        assert response.status_code < 300, response.text
        return jsonutil.loads(response.content)

    def seed(self, salesforce: dict[str, Any]) -> None:
        self.admin("POST", "/_sandbox/seed", {"salesforce": salesforce})

    def calls(self) -> dict[str, int]:
        systems: dict[str, dict[str, int]] = self.admin("GET", "/_sandbox/calls")["systems"]
        return systems.get("salesforce", {})

    def reset_calls(self) -> None:
        self.admin("DELETE", "/_sandbox/calls")

    def opportunity(self, deal_id: str) -> dict[str, Any]:
        record: dict[str, Any] = self.admin("GET", f"/_sandbox/salesforce/Opportunity/{deal_id}")
        return record

    def source(self, **overrides: Any) -> SalesforceDealSource:
        settings = SalesforceSettings(**{**self.section, **overrides})
        source = SalesforceDealSource(settings, company_currency="USD", sleep=lambda s: None)
        self.sources.append(source)
        return source


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with start_in_thread(tmp_path_factory.mktemp("sf"), systems={"salesforce": SYSTEM}) as runner:
        yield runner


@pytest.fixture
def org(sandbox: Any) -> Iterator[Org]:
    org = Org(sandbox)
    org.admin("POST", "/_sandbox/reset")
    org.reset_calls()
    yield org
    for source in org.sources:  # open keep-alive connections would slow the shutdown
        source.close()


def won(seed: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in seed["salesforce"]["Opportunity"] if d["StageName"] == "Closed Won"]


def writeback(deal: Deal, paid: str = "0") -> DealWriteBack:
    total = deal.lines_total() if deal.lines else deal.amount
    return DealWriteBack(
        deal_id=deal.id,
        target="stripe",
        invoice_external_id=f"in_{deal.id}",
        invoice_number=f"INV-{deal.id[-8:]}",
        invoice_url=f"https://invoice.stripe.com/i/{deal.id}",
        status=InvoiceStatus.OPEN,
        billing_status="Partially Paid",
        currency=deal.currency,
        amount_paid=Decimal(paid),
        balance=total - Decimal(paid),
    )


def test_pull_with_subquery_and_pagination_matches_the_org(org: Org) -> None:
    seed = generate_seed(GenerateOptions(deals=300, random_seed=7))
    org.seed(seed["salesforce"])
    pulled = list(org.source(query_batch_size=200).pull(None))
    deals = [c.item for c in pulled if isinstance(c.item, Deal)]
    assert not [c.item for c in pulled if isinstance(c.item, DealRejected)]
    expected = {d["Id"]: d for d in won(seed)}
    assert {d.id for d in deals} == set(expected)
    for deal in deals:
        source_deal = expected[deal.id]
        lines = source_deal.get("OpportunityLineItems", [])
        assert [ln.product_code for ln in deal.lines] == [ln["ProductCode"] for ln in lines]
        assert [ln.unit_price for ln in deal.lines] == [ln["UnitPrice"] for ln in lines]
        assert deal.currency == source_deal["CurrencyIsoCode"]
        if not lines:
            assert deal.amount == source_deal["Amount"]
    positions = [decode_cursor(c.cursor) for c in pulled]
    assert positions == sorted(positions)  # type: ignore[type-var]
    calls = org.calls()
    assert calls["GET query"] == 1 and calls["GET query/{locator}"] >= 5


def test_soql_escaping_reaches_the_org_intact(org: Org) -> None:
    org.seed(generate_seed(GenerateOptions(deals=120, random_seed=3))["salesforce"])
    source = org.source(extra_where="Account.Name = 'O\\'Brien & Sons'")
    deals = [c.item for c in source.pull(None)]
    assert deals and {d.account.name for d in deals if isinstance(d, Deal)} == {"O'Brien & Sons"}


def test_a_300_line_deal_arrives_whole(org: Org) -> None:
    seed = generate_seed(GenerateOptions(deals=3, random_seed=5))["salesforce"]
    big = {**seed["Opportunity"][0], "StageName": "Closed Won", "Id": "006000000000900AAA"}
    base = big.get("OpportunityLineItems") or seed["Opportunity"][1]["OpportunityLineItems"]
    big["OpportunityLineItems"] = [
        {**base[0], "Id": f"00k{n:012d}BBB", "SortOrder": n, "Quantity": Decimal(n + 1)}
        for n in range(300)
    ]
    seed["Opportunity"] = [*seed["Opportunity"], big]
    org.seed(seed)
    deals = {c.item.id: c.item for c in org.source().pull(None) if isinstance(c.item, Deal)}
    lines = deals["006000000000900AAA"].lines
    assert len(lines) == 300
    assert [ln.quantity for ln in lines] == [Decimal(n + 1) for n in range(300)]
    assert org.calls()["GET query/{locator}"] == 1  # the deal's own child nextRecordsUrl


def test_partial_write_back_failure(org: Org) -> None:
    org.seed(generate_seed(GenerateOptions(deals=12, random_seed=11))["salesforce"])
    source = org.source()
    deals = [c.item for c in source.pull(None) if isinstance(c.item, Deal)][:6]
    rejected = [deals[1].id, deals[4].id]
    org.admin(
        "POST",
        "/_sandbox/salesforce/fail_writes",
        {
            "ids": rejected,
            "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "message": "Billing fields are locked on archived deals",
            "fields": ["Billing_Status__c"],
        },
    )
    org.reset_calls()
    failures = source.write_back([writeback(d, paid="10.05") for d in deals])
    assert set(failures) == set(rejected)
    error = failures[rejected[0]]
    assert error.error_class is ErrorClass.INVALID_DATA and error.field == "Billing_Status__c"
    assert "Billing fields are locked on archived deals" in error.message
    written = org.opportunity(deals[0].id)
    assert written["Billing_Status__c"] == "Partially Paid"
    assert written["Billing_Amount_Paid__c"] == Decimal("10.05")
    assert written["Billing_Invoice_Id__c"] == f"in_{deals[0].id}"
    assert org.opportunity(rejected[0])["Billing_Status__c"] is None
    assert org.calls() == {"PATCH composite/sobjects": 1}


def test_a_missing_write_back_field_names_the_fix(org: Org) -> None:
    org.seed(generate_seed(GenerateOptions(deals=4, random_seed=2))["salesforce"])
    source = org.source()
    deal = next(c.item for c in source.pull(None) if isinstance(c.item, Deal))
    with SalesforceDealSource(
        SalesforceSettings(**org.section),
        company_currency="USD",
        writeback_fields=WriteBackFields(status="Billing_State__c"),
    ) as bad:
        failures = bad.write_back([writeback(deal)])
    assert failures[deal.id].code == "INVALID_FIELD"
    assert "change writeback in the mapping" in failures[deal.id].message


def test_session_renewal_and_jwt_flow(org: Org) -> None:
    org.seed(generate_seed(GenerateOptions(deals=5, random_seed=4))["salesforce"])
    source = org.source(auth="jwt")
    first = list(source.pull(None))
    org.admin("POST", "/_sandbox/salesforce/expire_sessions")
    again = list(source.pull(None))
    assert [c.item for c in first] == [c.item for c in again]
    assert source.client.logins == 2
    assert org.calls()["POST oauth2/token"] == 2


def test_quota_floor_stops_the_pull(org: Org) -> None:
    org.seed(generate_seed(GenerateOptions(deals=200, random_seed=9))["salesforce"])
    # 103 calls left: the floor (100) is crossed on the fourth page.
    org.admin("POST", "/_sandbox/salesforce/limits", {"daily_max": 1000, "used": 897})
    try:
        source = org.source(query_batch_size=200, quota_floor_percent=10)
        pulled = source.pull(None)
        got = []
        with pytest.raises(ConnectorError) as exc:
            for checkpointed in pulled:
                got.append(checkpointed)
        assert exc.value.code == "QUOTA_FLOOR" and exc.value.error_class is ErrorClass.RATE_LIMITED
        assert got and source.quota.stopped
        assert (source.quota.used, source.quota.max) == (901, 1000)
        assert org.calls()["GET query/{locator}"] == 3  # it stopped; it did not drain
    finally:
        org.admin("POST", "/_sandbox/salesforce/limits", {"daily_max": 100_000, "used": 0})


def test_single_currency_org_falls_back_in_auto_mode(org: Org) -> None:
    seed = generate_seed(GenerateOptions(deals=10, random_seed=6))["salesforce"]
    for section in ("Account", "Opportunity"):
        for row in seed[section]:
            row.pop("CurrencyIsoCode", None)
    org.seed({**seed, "multi_currency": False})
    deals = [c.item for c in org.source().pull(None) if isinstance(c.item, Deal)]
    assert deals and {d.currency for d in deals} == {"USD"}
    assert org.calls()["GET query"] == 2  # the failed ask for CurrencyIsoCode, then the pull


def test_acceptance_call_counts_for_10000_deals(org: Org) -> None:
    seed = generate_seed(GenerateOptions(deals=10_800, random_seed=1))["salesforce"]
    seed["Opportunity"] = won({"salesforce": seed})[:10_000]
    assert len(seed["Opportunity"]) == 10_000
    org.seed(seed)
    org.reset_calls()
    source = org.source()  # default batch size (2,000)
    deals = [c.item for c in source.pull(None) if isinstance(c.item, Deal)]
    line_items = sum(len(d.lines) for d in deals)
    assert len(deals) == 10_000 and all(len(d.lines) <= 8 for d in deals)
    queries = org.calls()
    query_calls = queries.get("GET query", 0) + queries.get("GET query/{locator}", 0)
    bound = math.ceil((len(deals) + line_items) / 2000) + 1
    assert query_calls <= bound, (query_calls, bound)
    org.reset_calls()
    assert source.write_back([writeback(d) for d in deals]) == {}
    assert org.calls() == {"PATCH composite/sobjects": 50}
