"""Contract tests: the unmodified simple-salesforce 1.12.10 against the Salesforce stand-in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql

from tests.sandbox.harness import LoopThread, start_in_thread

SYSTEMS = {"salesforce": "billsync.sandbox.salesforce.system:SalesforceSandbox"}
DEALS = (
    "SELECT Id, Name, Amount, Account.Name, SystemModstamp, (SELECT Id, ProductCode, "
    "Quantity, UnitPrice, Discount, TotalPrice FROM OpportunityLineItems ORDER BY SortOrder) "
    "FROM Opportunity WHERE IsWon = true ORDER BY SystemModstamp, Id"
)


def product(n: int) -> dict[str, Any]:
    return {"Id": f"01t{n:012d}AAA", "Name": f"Product {n}", "ProductCode": f"P-{n}"}


def deal(n: int, lines: int, **fields: Any) -> dict[str, Any]:
    return {
        "Id": f"006{n:012d}AAA",
        "Name": f"Deal {n}",
        "AccountId": "001000000000001AAA",
        "StageName": "Closed Won",
        "CloseDate": "2026-11-01",
        "CurrencyIsoCode": "USD",
        "OpportunityLineItems": [
            {
                "Product2Id": product(i % 3)["Id"],
                "Quantity": 1 + i % 4,
                "UnitPrice": "19.99",
                "Discount": 10 if i % 2 else 0,
                "SortOrder": i,
            }
            for i in range(lines)
        ],
        **fields,
    }


BASE_SEED = {
    "Account": [
        {"Id": "001000000000001AAA", "Name": "Acme Analytics", "BillingCity": "Austin"},
        {"Id": "001000000000002AAA", "Name": "O'Brien & Sons", "BillingCity": "Cork"},
        {"Id": "001000000000003AAA", "Name": 'Back\\slash "Quoted" Ltd'},
    ],
    "Product2": [product(i) for i in range(3)],
    "Opportunity": [deal(i, 8) for i in range(1, 31)],
}


@dataclass
class Org:
    runner: LoopThread

    @property
    def info(self) -> dict[str, Any]:
        return self.runner.info

    @property
    def url(self) -> str:
        return str(self.info["salesforce_url"])

    def http(self) -> requests.Session:
        session = requests.Session()
        session.verify = self.info["ca_bundle"]
        # requests lets REQUESTS_CA_BUNDLE override session.verify; the local CA must win.
        session.trust_env = False
        return session

    def token(self) -> str:
        response = self.http().post(
            f"{self.url}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.info["salesforce_client_id"],
                "client_secret": self.info["salesforce_client_secret"],
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def client(self, token: str | None = None) -> Salesforce:
        return Salesforce(
            instance_url=self.url,
            session_id=token or self.token(),
            version="66.0",
            session=self.http(),
        )

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(
            method, f"{self.info['admin_url']}/_sandbox/{path}", json=body, timeout=30
        )
        assert response.status_code < 300, response.text
        return response.json()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopThread]:
    with start_in_thread(tmp_path_factory.mktemp("salesforce"), systems=SYSTEMS) as loop:
        yield loop


@pytest.fixture
def org(runner: LoopThread) -> Org:
    org = Org(runner)
    org.admin("POST", "reset")
    org.admin("POST", "faults", {})
    org.admin("POST", "seed", {"salesforce": BASE_SEED})
    return org


def test_query_all_iter_follows_pages_counting_child_rows(org: Org) -> None:
    sf = org.client()
    options = {"headers": {"Sforce-Query-Options": "batchSize=200"}}
    first = sf.query(DEALS, **options)
    # Each deal costs 1 + 8 rows, so 22 deals (198 rows) fill a 200-row page.
    assert len(first["records"]) == 22
    assert first["totalSize"] == 30 and first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v66.0/query/01g")
    records = list(sf.query_all_iter(DEALS, **options))
    assert [r["Name"] for r in records] == [f"Deal {i}" for i in range(1, 31)]
    assert all(r["OpportunityLineItems"]["totalSize"] == 8 for r in records)
    assert records[0]["Account"]["Name"] == "Acme Analytics"
    line = records[0]["OpportunityLineItems"]["records"][1]
    assert (line["Quantity"], line["UnitPrice"], line["Discount"], line["TotalPrice"]) == (
        2.0,
        19.99,
        10.0,
        35.98,
    )
    # 2 × (19.99 + 35.98 + 59.97 + 71.96): each line rounded, then summed.
    assert records[0]["Amount"] == 375.8


def test_child_rows_past_200_have_their_own_next_records_url(org: Org) -> None:
    org.admin("POST", "salesforce/Opportunity", deal(99, 300, Name="Huge"))
    sf = org.client()
    result = sf.query(
        "SELECT Id, (SELECT Id, SortOrder FROM OpportunityLineItems ORDER BY SortOrder) "
        "FROM Opportunity WHERE Name = 'Huge'"
    )
    assert result["done"] is True
    lines = result["records"][0]["OpportunityLineItems"]
    assert (lines["totalSize"], lines["done"], len(lines["records"])) == (300, False, 200)
    # query_all_iter only follows the top-level cursor: the child list stays cut short.
    iterated = next(
        sf.query_all_iter(
            "SELECT Id, (SELECT Id FROM OpportunityLineItems) FROM Opportunity WHERE Name = 'Huge'"
        )
    )
    assert len(iterated["OpportunityLineItems"]["records"]) == 200
    rest = sf.query_more(lines["nextRecordsUrl"], identifier_is_url=True)
    assert (rest["totalSize"], rest["done"], len(rest["records"])) == (300, True, 100)
    sort_orders = [r["SortOrder"] for r in lines["records"] + rest["records"]]
    assert sort_orders == list(range(300))


def test_format_soql_values_round_trip(org: Org) -> None:
    sf = org.client()
    for name in ("O'Brien & Sons", 'Back\\slash "Quoted" Ltd'):
        found = sf.query(format_soql("SELECT Id, Name FROM Account WHERE Name = {}", name))
        assert [r["Name"] for r in found["records"]] == [name]
    like = sf.query(format_soql("SELECT Name FROM Account WHERE Name LIKE '{:like}%'", "O'Bri"))
    assert like["totalSize"] == 1
    since = datetime.now(UTC) - timedelta(days=1)
    recent = sf.query(
        format_soql("SELECT Id FROM Opportunity WHERE SystemModstamp > {} LIMIT 3", since)
    )
    assert recent["totalSize"] == 3


def test_collections_patch_reports_each_record(org: Org) -> None:
    sf = org.client()
    org.admin(
        "POST",
        "salesforce/fail_writes",
        {
            "ids": ["006000000000003AAA"],
            "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "message": "Invoice number is locked",
            "fields": ["Billing_Invoice_Number__c"],
        },
    )

    def record(n: int, **fields: Any) -> dict[str, Any]:
        return {"attributes": {"type": "Opportunity"}, "id": f"006{n:012d}AAA", **fields}

    result = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                record(1, Billing_Invoice_Number__c="INV-1", Billing_Amount_Paid__c=12.5),
                record(2, Not_A_Field__c="x"),
                record(3, Billing_Invoice_Number__c="INV-3"),
                record(777, Billing_Status__c="Paid"),
            ],
        },
    )
    assert result[0] == {"id": "006000000000001AAA", "success": True, "errors": []}
    assert result[1]["success"] is False
    assert result[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert result[2]["errors"] == [
        {
            "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "message": "Invoice number is locked",
            "fields": ["Billing_Invoice_Number__c"],
        }
    ]
    assert result[3]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    saved = sf.Opportunity.get("006000000000001AAA")
    assert (saved["Billing_Invoice_Number__c"], saved["Billing_Amount_Paid__c"]) == ("INV-1", 12.5)

    rolled_back = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": True,
            "records": [record(4, Billing_Status__c="Paid"), record(3, Billing_Status__c="x")],
        },
    )
    assert rolled_back[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sf.Opportunity.get("006000000000004AAA")["Billing_Status__c"] is None

    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.restful(
            "composite/sobjects",
            method="PATCH",
            json={"records": [record(1, Billing_Status__c="x")] * 201},
        )
    assert raised.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_collections_create(org: Org) -> None:
    sf = org.client()
    created = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "records": [
                {"attributes": {"type": "Account"}, "Name": "New Co"},
                {"attributes": {"type": "Account"}, "id": "001000000000001AAA", "Name": "x"},
                {"Name": "untyped"},
            ]
        },
    )
    assert created[0]["success"] and created[0]["id"].startswith("001")
    assert created[1]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert created[2]["errors"][0]["statusCode"] == "INVALID_TYPE"
    assert sf.Account.get(created[0]["id"])["Name"] == "New Co"


def test_sobject_get_update_and_errors(org: Org) -> None:
    sf = org.client()
    before = sf.Opportunity.get("006000000000005AAA")
    assert before["attributes"]["type"] == "Opportunity"
    assert before["IsWon"] is True and before["CurrencyIsoCode"] == "USD"
    time.sleep(0.002)
    assert sf.Opportunity.update("006000000000005AAA", {"Billing_Status__c": "Invoiced"}) == 204
    after = sf.Opportunity.get("006000000000005AAA")
    assert after["Billing_Status__c"] == "Invoiced"
    assert after["SystemModstamp"] > before["SystemModstamp"]
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.Opportunity.update("006000000000005AAA", {"Nope__c": 1})
    assert raised.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Nope__c'" in raised.value.content[0]["message"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.get("006000000000999AAA")
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.update("006000000000999AAA", {"Name": "x"})
    fields = sf.Opportunity.describe()["fields"]
    assert {"name": "Billing_Sync_Error__c", "updateable": True}.items() <= next(
        f for f in fields if f["name"] == "Billing_Sync_Error__c"
    ).items()
    assert sf.Opportunity.get("006000000000005AAA", headers=None)["Id"] == "006000000000005AAA"


def test_expired_sessions_raise(org: Org) -> None:
    sf = org.client()
    sf.query("SELECT Id FROM Account")
    org.admin("POST", "salesforce/expire_sessions")
    with pytest.raises(SalesforceExpiredSession) as raised:
        sf.query("SELECT Id FROM Account")
    assert raised.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    fresh = org.client()
    fresh.query("SELECT Id FROM Account")
    org.admin("POST", "clock", {"advance_s": 2 * 3600 + 1})
    with pytest.raises(SalesforceExpiredSession):
        fresh.query("SELECT Id FROM Account")


def test_api_usage_header_and_daily_limit(org: Org) -> None:
    sf = org.client()
    sf.query("SELECT Id FROM Account")
    sf.query("SELECT Id FROM Account")
    usage = sf.api_usage["api-usage"]
    assert (usage.used, usage.total) == (2, 100000)
    assert sf.limits()["DailyApiRequests"] == {"Max": 100000, "Remaining": 99997}
    org.admin("POST", "salesforce/limits", {"daily_max": 5000, "used": 5000})
    with pytest.raises(SalesforceRefusedRequest) as raised:
        sf.query("SELECT Id FROM Account")
    assert raised.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    org.admin("POST", "salesforce/limits", {"used": 10})
    sf.query("SELECT Id FROM Account")
    assert sf.api_usage["api-usage"].used == 11


def test_injected_faults_use_salesforce_errors(org: Org) -> None:
    sf = org.client()
    org.admin("POST", "faults", {"systems": ["salesforce"], "error_rate_5xx": 1.0})
    with pytest.raises(SalesforceGeneralError) as server_error:
        sf.query("SELECT Id FROM Account")
    assert server_error.value.status == 503
    assert server_error.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    org.admin("POST", "faults", {"systems": ["salesforce"], "rate_429": 1.0})
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM Account")
    assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


class _LoginHostAdapter(HTTPAdapter):
    """Sends simple-salesforce's fixed https://login.salesforce.com calls to the sandbox."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        assert request.url is not None
        request.url = request.url.replace("https://login.salesforce.com", self.target, 1)
        return super().send(request, **kwargs)


def test_jwt_login_through_simple_salesforce_and_auto_refresh(org: Org) -> None:
    # simple-salesforce builds the token URL as https://{domain}.salesforce.com, so the
    # test routes that host to the sandbox at the transport level; the SDK is unchanged.
    session = org.http()
    session.mount("https://login.salesforce.com", _LoginHostAdapter(org.url))
    sf = Salesforce(
        username=org.info["salesforce_username"],
        consumer_key=org.info["salesforce_client_id"],
        privatekey_file=org.info["salesforce_private_key_file"],
        version="66.0",
        session=session,
    )
    assert sf.sf_instance == org.url.removeprefix("https://")
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 3
    org.admin("POST", "salesforce/expire_sessions")
    # A 401 INVALID_SESSION_ID makes the SDK mint a new JWT and retry.
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 3


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({}, None),
        ({"iss": "someone-else"}, "invalid_client_id"),
        ({"sub": "nobody@example.com"}, "invalid_grant"),
        ({"aud": "https://evil.example"}, "invalid_grant"),
        ({"exp": 1_000_000}, "invalid_grant"),
    ],
)
def test_jwt_bearer_grant_checks_claims(
    org: Org, claims: dict[str, Any], error: str | None
) -> None:
    payload = {
        "iss": org.info["salesforce_client_id"],
        "sub": org.info["salesforce_username"],
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
        **claims,
    }
    key = Path(org.info["salesforce_private_key_file"]).read_bytes()
    response = org.http().post(
        f"{org.url}/services/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt.encode(payload, key, algorithm="RS256"),
        },
    )
    if error is None:
        assert response.status_code == 200
        assert response.json()["instance_url"] == org.url
    else:
        assert response.status_code == 400
        assert response.json()["error"] == error


def test_jwt_signed_with_another_key_is_refused(org: Org) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    payload = {
        "iss": org.info["salesforce_client_id"],
        "sub": org.info["salesforce_username"],
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
    }
    response = org.http().post(
        f"{org.url}/services/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt.encode(payload, other, algorithm="RS256"),
        },
    )
    assert response.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}
