"""Tests of the Salesforce connector; shared payload builders live here.

Payloads are shaped like the REST API's own: `attributes` on every record, the Account
nested under the Opportunity, line items as a nested `{totalSize, done, records}` result
(or null when there are none), `nextRecordsUrl` like `/services/data/v66.0/query/01gxx-2000`,
errors as arrays of `{message, errorCode, fields}`, and `Sforce-Limit-Info` on every
response. Numbers are written as exact JSON numbers.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billsync.connectors.salesforce.settings import SalesforceSettings
from billsync.sandbox import jsonutil

INSTANCE = "https://acme.my.salesforce.com"
API = f"{INSTANCE}/services/data/v66.0"
QUERY_URL = f"{API}/query/"
TOKEN_URL = f"{INSTANCE}/services/oauth2/token"
COLLECTIONS_URL = f"{API}/composite/sobjects"
SESSION_ID = "00D5g000004BiLl!AQoAQH.fake.session.token.value.0123456789abcdef"
CLIENT_SECRET = "s3cr3t-client-secret-0123456789abcdef"


def settings(**overrides: Any) -> SalesforceSettings:
    values: dict[str, Any] = {
        "auth": "client_credentials",
        "instance_url": INSTANCE,
        "client_id": "3MVG9consumerKey",
        "client_secret": CLIENT_SECRET,
        "retry_attempts": 3,
    }
    values.update(overrides)
    return SalesforceSettings(**values)


def limit_header(used: int = 1200, total: int = 100_000) -> dict[str, str]:
    return {"Sforce-Limit-Info": f"api-usage={used}/{total}"}


def token_body(access_token: str = SESSION_ID) -> dict[str, str]:
    return {
        "access_token": access_token,
        "instance_url": INSTANCE,
        "id": "https://login.salesforce.com/id/00D5g000004BiLlEAK/0055g00000BiLlSAAV",
        "token_type": "Bearer",
        "issued_at": "1793534400000",
        "signature": "c2lnbmF0dXJl",
        "scope": "api",
    }


def dumps(value: Any) -> str:
    """JSON with Decimals as exact numbers, as Salesforce writes them."""
    return jsonutil.dumps(value)


def sf_id(prefix: str, n: int) -> str:
    return f"{prefix}{n:012d}AAA"


def stamp(n: int) -> str:
    """A SystemModstamp as the API writes it, n seconds after 2026-11-01T12:00:00Z."""
    hours, rest = divmod(n, 3600)
    minutes, seconds = divmod(rest, 60)
    day, hour = divmod(12 + hours, 24)
    return f"2026-11-{1 + day:02d}T{hour:02d}:{minutes:02d}:{seconds:02d}.000+0000"


def line(
    n: int, *, opportunity: int = 0, quantity: str = "2", price: str = "150.25"
) -> dict[str, Any]:
    return {
        "attributes": {
            "type": "OpportunityLineItem",
            "url": f"/services/data/v66.0/sobjects/OpportunityLineItem/{sf_id('00k', n)}",
        },
        "Id": sf_id("00k", n),
        "Product2Id": sf_id("01t", n % 10),
        "ProductCode": f"SKU-{n % 10}",
        "Name": f"Product {n % 10}",
        "Description": None,
        "Quantity": Decimal(quantity),
        "UnitPrice": Decimal(price),
        "Discount": Decimal("12.5") if n % 2 else None,
        "ServiceDate": "2026-11-15",
        "SortOrder": n,
        "TotalPrice": Decimal(quantity) * Decimal(price),
    }


def child_result(
    records: list[dict[str, Any]], *, total: int | None = None, next_url: str | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {"totalSize": total if total is not None else len(records)}
    result["done"] = next_url is None
    if next_url:
        result["nextRecordsUrl"] = next_url
    result["records"] = records
    return result


def opportunity(
    n: int,
    *,
    at: int | None = None,
    lines: list[dict[str, Any]] | None = None,
    account_name: str = "O'Brien & Sons",
    currency: str | None = "EUR",
    amount: Decimal | None = Decimal("1000.50"),
    **extra: Any,
) -> dict[str, Any]:
    """An Opportunity row of the pull query, with its Account and its lines."""
    record: dict[str, Any] = {
        "attributes": {
            "type": "Opportunity",
            "url": f"/services/data/v66.0/sobjects/Opportunity/{sf_id('006', n)}",
        },
        "Id": sf_id("006", n),
        "Name": f"{account_name} — order {n}",
        "AccountId": sf_id("001", n % 7),
        "CloseDate": "2026-11-01",
        "Amount": amount,
        "SystemModstamp": stamp(n if at is None else at),
        "IsWon": True,
        "StageName": "Closed Won",
    }
    if currency is not None:
        record["CurrencyIsoCode"] = currency
    record["Account"] = {
        "attributes": {
            "type": "Account",
            "url": f"/services/data/v66.0/sobjects/Account/{sf_id('001', n % 7)}",
        },
        "Id": sf_id("001", n % 7),
        "Name": account_name,
        "BillingStreet": "1 Harbour Road\nUnit 4",
        "BillingCity": "Dublin",
        "BillingState": None,
        "BillingPostalCode": "D02 X285",
        "BillingCountry": "IE",
        "Billing_Email__c": "ap@obrien.example",
        "AccountNumber": f"AC-{n % 7:05d}",
    }
    record["Billing_Platform__c"] = "QuickBooks"
    record["OpportunityLineItems"] = None if lines == [] else child_result(lines or [line(n)])
    record.update(extra)
    return record


def query_page(
    records: list[dict[str, Any]], *, total: int | None = None, next_url: str | None = None
) -> dict[str, Any]:
    page: dict[str, Any] = {"totalSize": total if total is not None else len(records)}
    page["done"] = next_url is None
    if next_url:
        page["nextRecordsUrl"] = next_url
    page["records"] = records
    return page


def error_body(code: str, message: str, fields: list[str] | None = None) -> str:
    return dumps([{"message": message, "errorCode": code, "fields": fields or []}])
