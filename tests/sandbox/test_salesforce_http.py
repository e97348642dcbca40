"""The Salesforce stand-in's wire details over raw HTTP: OAuth, errors, cursors, admin."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from billsync.sandbox.generate import GenerateOptions, generate_seed
from tests.sandbox.harness import LoopThread
from tests.sandbox.test_salesforce_contract import DEALS, Org, deal, org, runner

__all__ = ["org", "runner"]  # the fixtures, shared with the contract tests

V = "/services/data/v66.0"


def get(org: Org, path: str, token: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return org.http().get(f"{org.url}{path}", headers=headers, **kwargs)


def test_client_credentials_in_body_or_basic_auth(org: Org) -> None:
    http = org.http()
    client_id, secret = org.info["salesforce_client_id"], org.info["salesforce_client_secret"]
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = http.post(
        f"{org.url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    body = response.json()
    assert response.status_code == 200
    assert set(body) >= {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    assert body["token_type"] == "Bearer" and body["instance_url"] == org.url
    for data, error in [
        ({"client_id": client_id, "client_secret": "wrong"}, "invalid_client"),
        ({"client_id": "unknown", "client_secret": secret}, "invalid_client_id"),
    ]:
        refused = http.post(
            f"{org.url}/services/oauth2/token", data={"grant_type": "client_credentials", **data}
        )
        assert (refused.status_code, refused.json()["error"]) == (400, error)
    unsupported = http.post(f"{org.url}/services/oauth2/token", data={"grant_type": "password"})
    assert unsupported.json()["error"] == "unsupported_grant_type"


def test_versions_resources_and_unknown_paths(org: Org) -> None:
    http = org.http()
    versions = http.get(f"{org.url}/services/data/").json()  # no session needed
    assert versions[-1] == {"label": "Spring '26", "url": "/services/data/v66.0", "version": "66.0"}
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
    token = org.token()
    assert get(org, V, token).json()["query"] == f"{V}/query"
    for path, status, code in [
        ("/services/data/v99.0/query?q=SELECT+Id+FROM+Account", 404, "NOT_FOUND"),
        (f"{V}/nothing/here", 404, "NOT_FOUND"),
        (f"{V}/sobjects/Widget/001000000000001AAA", 404, "NOT_FOUND"),
        (f"{V}/sobjects/Opportunity/001000000000001AAA", 404, "NOT_FOUND"),
        (f"{V}/query", 400, "MALFORMED_QUERY"),
    ]:
        response = get(org, path, token)
        assert response.status_code == status, path
        assert response.json()[0]["errorCode"] == code
    wrong_method = org.http().put(
        f"{org.url}{V}/sobjects/Opportunity/006000000000001AAA",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert wrong_method.status_code == 405
    assert wrong_method.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    unauthenticated = org.http().get(f"{org.url}{V}/limits/")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    assert "Sforce-Limit-Info" not in unauthenticated.headers


def test_query_errors_quote_the_query_like_salesforce(org: Org) -> None:
    token = org.token()
    response = get(org, f"{V}/query", token, params={"q": "SELECT Id, Foo FROM Opportunity"})
    assert response.status_code == 400
    assert response.headers["Sforce-Limit-Info"].startswith("api-usage=")
    [error] = response.json()
    assert error["errorCode"] == "INVALID_FIELD"
    assert error["message"].startswith(
        "\nSELECT Id, Foo FROM Opportunity\n           ^\nERROR at Row:1:Column:12\n"
        "No such column 'Foo' on entity 'Opportunity'."
    )
    malformed = get(org, f"{V}/query", token, params={"q": "SELECT Id FROM Opportunity WHERE"})
    assert malformed.json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert "unexpected token: '<EOF>'" in malformed.json()[0]["message"]


def test_cursors_expire_and_bad_locators_are_refused(org: Org) -> None:
    token = org.token()
    options = {"Sforce-Query-Options": "batchSize=200"}
    first = get(org, f"{V}/query", token, params={"q": DEALS}, headers=options).json()
    second = get(org, first["nextRecordsUrl"], token).json()
    assert [r["Name"] for r in second["records"]][:1] == ["Deal 23"]
    again = get(org, first["nextRecordsUrl"], token).json()
    assert again == second  # re-reading a page (a retry) gives the same page
    bad = get(org, f"{V}/query/01gNOPE-200", token)
    assert (bad.status_code, bad.json()[0]["errorCode"]) == (400, "INVALID_QUERY_LOCATOR")
    org.admin("POST", "clock", {"advance_s": 16 * 60})
    expired = get(org, first["nextRecordsUrl"], token)
    assert expired.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_calls_are_counted_per_stable_endpoint(org: Org) -> None:
    org.admin("DELETE", "calls")
    token = org.token()
    get(org, f"{V}/query/", token, params={"q": "SELECT Id FROM Account"})
    get(org, f"{V}/sobjects/Opportunity/006000000000001AAA", token)
    get(org, f"{V}/sobjects/Opportunity/006000000000002AAA", token)
    calls = org.admin("GET", "calls")["systems"]["salesforce"]
    assert calls == {
        "POST oauth2/token": 1,
        "GET query": 1,
        "GET sobjects/Opportunity/{id}": 2,
    }


def test_admin_deal_changes_move_the_watermark(org: Org) -> None:
    token = org.token()
    created = org.admin(
        "POST",
        "salesforce/Opportunity",
        {**deal(50, 2), "StageName": "Negotiation/Review"},
    )
    assert created["IsWon"] is False and len(created["OpportunityLineItems"]) == 2
    watermark = created["SystemModstamp"].replace("+0000", "Z")
    time.sleep(0.002)
    line_id = created["OpportunityLineItems"][0]["Id"]
    changed = org.admin(
        "PATCH",
        "salesforce/Opportunity/006000000000050AAA",
        {
            "StageName": "Closed Won",
            "OpportunityLineItems": [
                {"Id": line_id, "Quantity": 10},
                {"Product2Id": "01t000000000001AAA", "Quantity": 1, "UnitPrice": "5.00"},
            ],
        },
    )
    assert changed["IsWon"] is True
    assert [line["Quantity"] for line in changed["OpportunityLineItems"]] == [10.0, 1.0]
    assert changed["Amount"] == 204.9  # 10 × 19.99 + 1 × 5.00
    since = get(
        org,
        f"{V}/query",
        token,
        params={
            "q": f"SELECT Id FROM Opportunity WHERE IsWon = true AND SystemModstamp > {watermark}"
        },
    ).json()
    assert [r["Id"] for r in since["records"]] == ["006000000000050AAA"]
    refused = org.http().post(
        f"{org.info['admin_url']}/_sandbox/salesforce/Opportunity", json={"Name": "no stage"}
    )
    assert refused.status_code == 400
    assert refused.json()["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_fail_writes_can_fail_only_a_few_times(org: Org) -> None:
    sf = org.client()
    org.admin(
        "POST",
        "salesforce/fail_writes",
        {"ids": ["006000000000001"], "statusCode": "UNABLE_TO_LOCK_ROW", "times": 1},
    )
    body = {
        "records": [
            {
                "attributes": {"type": "Opportunity"},
                "id": "006000000000001AAA",
                "Billing_Status__c": "Paid",
            }
        ]
    }
    first = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert first[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    second = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert second[0]["success"] is True
    assert org.admin("GET", "salesforce/fail_writes") == {"failures": {}}


def test_settings_and_limits_admin(org: Org) -> None:
    settings = org.admin("POST", "salesforce/settings", {"child_page_size": 3})
    assert settings["child_page_size"] == 3
    sf = org.client()
    result = sf.query("SELECT Id, (SELECT Id FROM OpportunityLineItems) FROM Opportunity LIMIT 1")
    lines = result["records"][0]["OpportunityLineItems"]
    assert (len(lines["records"]), lines["done"]) == (3, False)
    assert org.admin("POST", "salesforce/limits", {"daily_max": 10})["remaining"] == 9
    org.admin("POST", "salesforce/settings", {"multi_currency": False})
    with pytest.raises(Exception, match="INVALID_FIELD"):
        sf.query("SELECT CurrencyIsoCode FROM Opportunity")
    org.admin("POST", "reset")
    assert org.admin("GET", "salesforce/settings")["multi_currency"] is True
    assert org.admin("GET", "salesforce/limits")["daily_max"] == 100000


def test_ten_thousand_deals_page_quickly(org: Org, runner: LoopThread) -> None:
    seed = generate_seed(GenerateOptions(deals=10_000))

    async def load() -> None:
        runner.sandbox.reset()
        runner.sandbox.seed({"salesforce": seed["salesforce"]})

    runner.call(load())
    token = org.token()
    url = f"{V}/query?q=" + DEALS.replace(" ", "+")
    slowest = 0.0
    deals = 0
    while url:
        started = time.perf_counter()
        response = get(org, url, token)
        slowest = max(slowest, time.perf_counter() - started)
        page = response.json()
        assert (
            sum(
                1 + (r["OpportunityLineItems"] or {"totalSize": 0})["totalSize"]
                for r in page["records"]
            )
            <= 2000
        )
        deals += len(page["records"])
        url = page.get("nextRecordsUrl", "")
    assert deals == page["totalSize"] > 9000
    assert slowest < 1.0
