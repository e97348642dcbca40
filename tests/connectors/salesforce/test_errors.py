"""The error table: every row, driven through the real client against `responses`."""

from __future__ import annotations

import pytest
import requests
import responses

from billsync.connectors.salesforce.client import (
    ERROR_CODES,
    EXCEPTIONS,
    HTTP_STATUS,
    SalesforceClient,
    classify,
    rule_for,
)
from billsync.core.protocols import ConnectorError, ErrorClass
from tests.connectors.salesforce import (
    CLIENT_SECRET,
    QUERY_URL,
    SESSION_ID,
    TOKEN_URL,
    error_body,
    limit_header,
    settings,
    token_body,
)

# The HTTP status Salesforce uses with each REST errorCode (400 unless listed).
STATUS_OF = {
    "SERVER_UNAVAILABLE": 503,
    "INVALID_SESSION_ID": 401,
    "REQUEST_LIMIT_EXCEEDED": 403,
    "INSUFFICIENT_ACCESS": 403,
    "INSUFFICIENT_ACCESS_OR_READONLY": 403,
    "API_DISABLED_FOR_ORG": 403,
    "API_CURRENTLY_DISABLED": 403,
    "NOT_FOUND": 404,
    "ENTITY_IS_DELETED": 404,
    "UNABLE_TO_LOCK_ROW": 400,
}
OAUTH_CODES = [code for code in ERROR_CODES if code.islower()]
REST_CODES = [code for code in ERROR_CODES if not code.islower()]


def client() -> SalesforceClient:
    return SalesforceClient(settings(retry_attempts=1), sleep=lambda s: None)


def query_error(rsps: responses.RequestsMock) -> ConnectorError:
    with pytest.raises(ConnectorError) as exc:
        client().query("SELECT Id FROM Opportunity", batch_size=2000)
    text = f"{exc.value} {exc.value!r}"
    assert SESSION_ID not in text and CLIENT_SECRET not in text
    return exc.value


@pytest.mark.parametrize("code", REST_CODES)
def test_every_rest_error_code_row(code: str) -> None:
    rule = ERROR_CODES[code]
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(
            QUERY_URL,
            body=error_body(code, f"Salesforce says {code.lower()}", ["Billing_Status__c"]),
            status=STATUS_OF.get(code, 400),
            headers=limit_header(),
        )
        error = query_error(rsps)
    assert error.error_class is rule.error_class
    assert error.code == code
    assert error.field == "Billing_Status__c"
    assert f"Salesforce says {code.lower()}" in error.message
    assert rule.fix in error.message


@pytest.mark.parametrize("code", OAUTH_CODES)
def test_every_token_endpoint_error_row(code: str) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(
            TOKEN_URL,
            status=400,
            json={"error": code, "error_description": "authentication failure"},
        )
        error = query_error(rsps)
    assert error.error_class is ErrorClass.AUTH
    assert error.code == code
    assert "login (query) failed" in error.message
    assert ERROR_CODES[code].fix in error.message


@pytest.mark.parametrize(("status", "rule"), [*HTTP_STATUS.items(), (500, None), (502, None)])
def test_http_status_fallback_rows(status: int, rule: object) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, body=error_body("SOMETHING_NEW", "new to us"), status=status)
        if status == 401:  # renewal first, then the second 401 is final
            rsps.post(TOKEN_URL, json=token_body())
        error = query_error(rsps)
    expected = HTTP_STATUS[status].error_class if status in HTTP_STATUS else ErrorClass.TRANSIENT
    assert error.error_class is expected
    assert "new to us" in error.message


def test_an_html_error_page_is_transient() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, body="<html>Service Unavailable</html>", status=503)
        error = query_error(rsps)
    assert error.error_class is ErrorClass.TRANSIENT
    assert "HTTP 503" in error.message


@pytest.mark.parametrize(("kind", "rule"), EXCEPTIONS)
def test_every_transport_exception_row(kind: type[Exception], rule: object) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        if kind is requests.exceptions.JSONDecodeError:
            rsps.get(QUERY_URL, body="<html>not json</html>", status=200)
        else:
            rsps.get(QUERY_URL, body=kind("https://acme.my.salesforce.com/?q=SELECT secret"))
        error = query_error(rsps)
    assert error.error_class is rule.error_class  # type: ignore[attr-defined]
    assert error.code == kind.__name__.upper()
    assert "?q=" not in error.message  # the URL (with the query) is never quoted


def test_unknown_exceptions_are_not_swallowed() -> None:
    assert classify(KeyError("x"), operation="query") is None


def test_rule_for_unknown_code_falls_back_to_status() -> None:
    assert rule_for("BRAND_NEW", 503).error_class is ErrorClass.TRANSIENT
    assert rule_for("BRAND_NEW", 404).error_class is ErrorClass.NOT_FOUND
    assert rule_for("BRAND_NEW").error_class is ErrorClass.INVALID_DATA
    assert rule_for(None, None).error_class is ErrorClass.TRANSIENT


def test_judged_rows() -> None:
    # Lock contention clears by itself and the write is idempotent: retry it as is.
    assert ERROR_CODES["UNABLE_TO_LOCK_ROW"].error_class is ErrorClass.TRANSIENT
    assert ERROR_CODES["INVALID_CROSS_REFERENCE_KEY"].error_class is ErrorClass.NOT_FOUND
    assert ERROR_CODES["ENTITY_IS_LOCKED"].error_class is ErrorClass.CONFLICT


def test_query_errors_drop_the_echoed_soql_and_name_the_column() -> None:
    message = (
        "\nSELECT Id, Foo__c FROM Opportunity WHERE Account.Name = 'O\\'Brien'\n"
        "           ^\nERROR at Row:1:Column:12\nNo such column 'Foo__c' on entity "
        "'Opportunity'. If you are attempting to use a custom field, be sure to append the "
        "'__c' after the custom field name."
    )
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, body=error_body("INVALID_FIELD", message), status=400)
        error = query_error(rsps)
    assert error.field == "Foo__c"
    assert "O\\'Brien" not in error.message
    assert error.message.startswith(
        "Salesforce query failed: INVALID_FIELD (HTTP 400): No such column 'Foo__c'"
    )
    assert "create the field" in error.message
