"""Contract tests against `responses` fixtures shaped like the real QuickBooks API: the
error table, retries with one requestid, paging, batch fallbacks, total discrepancies
and CDC windows past the 1,000-object cap."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses

from billsync.connectors.quickbooks import QuickBooksConnector, TokenSet
from billsync.connectors.quickbooks.auth import credential_name
from billsync.connectors.quickbooks.feed import format_cursor
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.core.canonical import DiscrepancyKind, InvoiceRef, PaymentKind
from billsync.core.catalog import ProductQuery
from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.sandbox import jsonutil
from tests.connectors.quickbooks.conftest import FakeTime, customer, draft, line

REALM = "4620816365257778"
BASE = f"https://qbo.test/v3/company/{REALM}"
THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse '
    'xmlns="http://schema.intuit.com/finance/v3" time="2026-11-02T01:02:03.000-07:00">'
    '<Fault type="ThrottleExceeded"><Error code="3001"><Message>message=ThrottleExceeded; '
    "errorCode=003001; statusCode=429</Message></Error></Fault></IntuitResponse>"
)


def fault(
    code: str, message: str = "m", detail: str = "d", kind: str = "ValidationFault"
) -> dict[str, Any]:
    return {
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": kind},
        "time": "2026-11-02T01:02:03.000-07:00",
    }


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[dict[str, Any], int]] = {}

    def load(self, name: str) -> tuple[Mapping[str, Any], int] | None:
        return self.rows.get(name)

    def save(self, name: str, data: Mapping[str, Any], expected_version: int | None) -> bool:
        current = self.rows.get(name)
        if (current[1] if current else None) != expected_version:
            return False
        self.rows[name] = (dict(data), (expected_version or 0) + 1)
        return True

    def hold(self, name: str, ttl: timedelta) -> AbstractContextManager[bool]:
        return nullcontext(True)


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def connector(time: FakeTime) -> Iterator[QuickBooksConnector]:
    settings = QuickBooksSettings(
        enabled=True,
        environment="production",
        client_id="cid",
        client_secret="csecret",
        realm_id=REALM,
        base_url="https://qbo.test/v3",
        retry_attempts=3,
    )
    store = MemoryStore()
    tokens = TokenSet(
        refresh_token="AB11refresh",
        access_token="eyJaccess",
        access_expires_at=time.now() + timedelta(hours=1),
        connected_at=time.now(),
    )
    store.save(credential_name(REALM), tokens.to_data(), None)
    responses.start()
    try:
        responses.get(
            f"{BASE}/preferences",
            json={
                "Preferences": {
                    "CurrencyPrefs": {
                        "MultiCurrencyEnabled": False,
                        "HomeCurrency": {"value": "USD"},
                    }
                }
            },
        )
        yield QuickBooksConnector(
            settings, store, clock=time.now, sleep=time.sleep, monotonic=time.monotonic
        )
    finally:
        responses.stop()
        responses.reset()


def query_router(tables: Mapping[str, Callable[[str], dict[str, Any]]]) -> Callable[..., Any]:
    """A responses callback answering POST /query by the statement's entity."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        statement = str(request.body if isinstance(request.body, str) else request.body.decode())
        entity = statement.split(" FROM ")[1].split()[0]
        return 200, {}, jsonutil.dumps({"QueryResponse": tables[entity](statement)})

    return answer


def get_error(connector: QuickBooksConnector, method: str, **body: Any) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        if method == "GET":
            connector.fetch_invoice("42")
        else:
            connector.client.call("POST", "invoice", body=body or {"x": 1}, request_id="rid-1")
    return caught.value


@pytest.mark.parametrize(
    ("method", "status", "body", "error_class", "code"),
    [
        (
            "POST",
            400,
            fault("6000", detail="Business Validation Error: x"),
            ErrorClass.INVALID_DATA,
            "6000",
        ),
        ("POST", 400, fault("2050"), ErrorClass.INVALID_DATA, "2050"),
        (
            "POST",
            200,
            fault("6240", "Duplicate Name Exists Error"),
            ErrorClass.INVALID_DATA,
            "6240",
        ),
        ("POST", 400, fault("6140"), ErrorClass.INVALID_DATA, "6140"),
        ("POST", 400, fault("5010", "Stale Object Error"), ErrorClass.CONFLICT, "5010"),
        ("POST", 400, fault("610"), ErrorClass.INVALID_DATA, "610"),
        ("GET", 400, fault("610"), ErrorClass.NOT_FOUND, "610"),
        ("POST", 400, fault("2020"), ErrorClass.INVALID_DATA, "2020"),
        ("POST", 400, fault("6190", kind="AuthorizationFault"), ErrorClass.AUTH, "6190"),
        ("POST", 403, fault("3100", kind="AUTHORIZATION"), ErrorClass.AUTH, "3100"),
        ("POST", 400, fault("120", kind="AuthorizationFault"), ErrorClass.AUTH, "120"),
        ("POST", 400, fault("4000"), ErrorClass.INVALID_DATA, "4000"),
        ("GET", 404, "<html>not here</html>", ErrorClass.NOT_FOUND, "HTTP_404"),
        ("POST", 500, fault("10000", kind="SystemFault"), ErrorClass.TRANSIENT, "10000"),
        ("POST", 503, "<html>maintenance</html>", ErrorClass.TRANSIENT, "HTTP_503"),
        ("POST", 429, THROTTLE_XML, ErrorClass.RATE_LIMITED, "3001"),
        (
            "POST",
            429,
            fault("3001", "message=ThrottleExceeded", kind="ThrottleExceeded"),
            ErrorClass.RATE_LIMITED,
            "3001",
        ),
        ("POST", 200, "not json at all", ErrorClass.TRANSIENT, "HTTP_200"),
    ],
)
def test_the_error_table(
    connector: QuickBooksConnector,
    method: str,
    status: int,
    body: Any,
    error_class: ErrorClass,
    code: str,
) -> None:
    url = f"{BASE}/invoice/42" if method == "GET" else f"{BASE}/invoice"
    payload = json.dumps(body) if isinstance(body, dict) else body
    responses.add(method, url, body=payload, status=status)
    error = get_error(connector, method)
    assert (error.error_class, error.code) == (error_class, code)
    assert error.system == "quickbooks" and error.message
    assert "eyJaccess" not in str(error) + repr(error)
    attempts = len([c for c in responses.calls if "/invoice" in c.request.url])
    assert attempts == (3 if error.is_retryable else 1)
    if error_class is ErrorClass.RATE_LIMITED:
        assert error.retry_after == timedelta(seconds=60)


def test_network_failures_are_transient_and_retried(connector: QuickBooksConnector) -> None:
    responses.get(f"{BASE}/invoice/42", body=requests.exceptions.ConnectionError("reset"))
    error = get_error(connector, "GET")
    assert (error.error_class, error.code) == (ErrorClass.TRANSIENT, "ConnectionError")
    assert len([c for c in responses.calls if "/invoice/" in c.request.url]) == 3


def test_every_retry_sends_the_same_requestid(
    connector: QuickBooksConnector, time: FakeTime
) -> None:
    responses.post(f"{BASE}/invoice", status=503, body="busy")
    responses.post(f"{BASE}/invoice", status=429, body=THROTTLE_XML)
    responses.post(f"{BASE}/invoice", json={"Invoice": {"Id": "9"}})
    result = connector.client.call(
        "POST", "invoice", body={"x": Decimal("1.10")}, request_id="rid-7"
    )
    assert result["Invoice"]["Id"] == "9"
    sent = [c.request for c in responses.calls if c.request.url.startswith(f"{BASE}/invoice")]
    assert [parse_qs(urlparse(r.url).query)["requestid"] for r in sent] == [["rid-7"]] * 3
    assert all(parse_qs(urlparse(r.url).query)["minorversion"] == ["75"] for r in sent)
    assert sent[0].body == b'{"x":1.10}' or sent[0].body == '{"x":1.10}'  # exact decimal
    assert 60 in time.sleeps  # the throttle wait


def test_a_401_twice_is_an_auth_error_after_one_refresh(connector: QuickBooksConnector) -> None:
    responses.get(
        "https://developer.intuit.com/.well-known/openid_configuration/",
        json={
            "issuer": "i",
            "authorization_endpoint": "https://idp.test/a",
            "token_endpoint": "https://idp.test/t",
            "revocation_endpoint": "https://idp.test/r",
            "jwks_uri": "https://idp.test/j",
            "userinfo_endpoint": "https://idp.test/u",
        },
    )
    responses.post(
        "https://idp.test/t",
        json={
            "access_token": "eyJnew",
            "refresh_token": "AB11new",
            "expires_in": 3600,
            "x_refresh_token_expires_in": 8726400,
        },
    )
    responses.get(f"{BASE}/invoice/42", status=401, json=fault("3200", kind="AUTHENTICATION"))
    error = get_error(connector, "GET")
    assert (error.error_class, error.code) == (ErrorClass.AUTH, "401")
    api = [
        c.request.headers["Authorization"] for c in responses.calls if "/invoice/" in c.request.url
    ]
    assert api == ["Bearer eyJaccess", "Bearer eyJnew"]


def test_items_are_paged_and_resolved_by_sku_then_name(connector: QuickBooksConnector) -> None:
    first = [
        {"Id": str(i), "Name": f"Item {i}", "Sku": f"SKU-{i}", "Active": True}
        for i in range(1, 1001)
    ]
    second = [
        {"Id": "1001", "Name": "Consulting", "Active": True},
        {"Id": "1002", "Name": "Old thing", "Sku": "OLD", "Active": False},
        {"Id": "1003", "Name": "Category", "Type": "Category", "Sku": "CAT", "Active": True},
        {"Id": "1004", "Name": "Dup A", "Sku": "DUP", "Active": False},
        {"Id": "1005", "Name": "Dup B", "Sku": "DUP", "Active": True},
    ]
    statements: list[str] = []

    def items(statement: str) -> dict[str, Any]:
        statements.append(statement)
        page = first if "STARTPOSITION 1 " in statement else second
        return {"Item": page, "startPosition": 1, "maxResults": len(page)}

    responses.add_callback(responses.POST, f"{BASE}/query", callback=query_router({"Item": items}))
    catalog = connector.catalog()
    by = lambda *c: catalog.resolve_product(ProductQuery("P", "USD", c))  # noqa: E731
    assert by(("sku", "SKU-7"), ("name", "Consulting")).ref == "7"
    assert by(("sku", "nope"), ("name", "consulting")).ref == "1001"
    inactive = by(
        ("sku", "OLD"),
    )
    assert inactive is not None and not inactive.active and inactive.label == "Old thing"
    assert (
        by(
            ("sku", "CAT"),
        )
        is None
    )
    assert (
        by(
            ("sku", "DUP"),
        ).ref
        == "1005"
    )
    where = "SELECT * FROM Item WHERE Active IN (true, false) ORDERBY Id"
    assert statements == [
        f"{where} STARTPOSITION 1 MAXRESULTS 1000",
        f"{where} STARTPOSITION 1001 MAXRESULTS 1000",
    ]
    assert catalog.currency_problem("USD") is None
    assert "multicurrency is off" in (catalog.currency_problem("EUR") or "")


def _ready_for_invoices() -> None:
    def customers(statement: str) -> dict[str, Any]:
        # The account's customer already in QuickBooks: name and email agree, so the
        # identity rules adopt it (issue 16).
        email = {"Address": "ap1@customer.example"}
        found = {"Id": "5", "DisplayName": "Customer 1", "Active": True, "PrimaryEmailAddr": email}
        return {"Customer": [found]}

    tables = {
        "Customer": customers,
        "Term": lambda s: {"Term": [{"Id": "3", "Name": "Net 30", "Active": True}]},
        "Invoice": lambda s: {},
    }
    responses.add_callback(responses.POST, f"{BASE}/query", callback=query_router(tables))


def test_a_total_that_differs_is_recorded_as_a_discrepancy(connector: QuickBooksConnector) -> None:
    _ready_for_invoices()
    intended = draft("006TAX000000000AAA", customer(1), (line("11", "2", "50.00"),))
    responses.post(
        f"{BASE}/invoice",
        body=jsonutil.dumps(
            {
                "Invoice": {
                    "Id": "77",
                    "DocNumber": intended.doc_number,
                    "TotalAmt": Decimal("108.25"),
                    "Balance": Decimal("108.25"),
                    "PrivateNote": "billsync deal 006TAX000000000AAA",
                    "TxnTaxDetail": {"TotalTax": Decimal("8.25")},
                    "CurrencyRef": {"value": "USD"},
                }
            }
        ),
    )
    ref = connector.create_invoice(intended)
    assert ref.total == Decimal("108.25")
    [found] = connector.take_discrepancies()
    assert found.kind is DiscrepancyKind.INVOICE_TOTAL_MISMATCH
    assert (found.expected, found.actual) == ("100.00", "108.25")
    assert (found.deal_id, found.external_id) == (intended.deal_id, "77")
    assert "8.25" in found.detail
    assert connector.take_discrepancies() == []


def _created(deal: str, total: str = "100.00") -> dict[str, Any]:
    return {
        "Invoice": {
            "Id": deal[-3:],
            "DocNumber": deal,
            "TotalAmt": Decimal(total),
            "Balance": Decimal(total),
            "PrivateNote": f"billsync deal {deal}",
        }
    }


def test_batch_level_fault_and_transient_items_fall_back_to_single_creates(
    connector: QuickBooksConnector,
) -> None:
    _ready_for_invoices()
    drafts = [
        draft(f"006BATCH0000000{n:03d}", customer(1), (line("11", "2", "50.00"),))
        for n in (1, 2, 3)
    ]
    batches: list[dict[str, Any]] = []

    def batch(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)  # type: ignore[arg-type]
        batches.append(body)
        items = body["BatchItemRequest"]
        answers = [
            {"bId": items[0]["bId"], **_created(items[0]["Invoice"]["DocNumber"])},
            {"bId": items[1]["bId"], **fault("10000", kind="SystemFault")},
            # the third item is not answered at all
        ]
        return 200, {}, jsonutil.dumps({"BatchItemResponse": answers})

    responses.add_callback(responses.POST, f"{BASE}/batch", callback=batch)
    singles: list[str] = []

    def single(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        singles.append(parse_qs(urlparse(request.url).query)["requestid"][0])
        doc = json.loads(request.body)["DocNumber"]  # type: ignore[arg-type]
        return 200, {}, jsonutil.dumps(_created(doc))

    responses.add_callback(responses.POST, f"{BASE}/invoice", callback=single)
    results = connector.create_invoices(drafts)
    assert all(isinstance(r, InvoiceRef) for r in results.values()), results
    assert len(batches) == 1 and len(singles) == 2
    assert len(set(singles)) == 2 and all(len(s) == 36 for s in singles)


def test_a_refused_batch_goes_one_by_one(connector: QuickBooksConnector) -> None:
    _ready_for_invoices()
    drafts = [
        draft(f"006REFUSE000000{n:03d}", customer(1), (line("11", "2", "50.00"),)) for n in (1, 2)
    ]
    responses.post(f"{BASE}/batch", status=400, json=fault("2010", detail="Batch size exceeds"))

    def single(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        doc = json.loads(request.body)["DocNumber"]  # type: ignore[arg-type]
        return 200, {}, jsonutil.dumps(_created(doc))

    responses.add_callback(responses.POST, f"{BASE}/invoice", callback=single)
    results = connector.create_invoices(drafts)
    assert all(isinstance(r, InvoiceRef) for r in results.values())


def test_cdc_windows_past_the_thousand_object_cap(
    connector: QuickBooksConnector, time: FakeTime
) -> None:
    start = time.now() - timedelta(days=3)

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat()

    payments = [
        {
            "Id": str(n),
            "TotalAmt": Decimal("1.00"),
            "UnappliedAmt": Decimal("0"),
            "CurrencyRef": {"value": "USD"},
            "Line": [
                {"Amount": Decimal("1.00"), "LinkedTxn": [{"TxnId": "500", "TxnType": "Invoice"}]}
            ],
            "MetaData": {
                "CreateTime": stamp(start + timedelta(minutes=n)),
                "LastUpdatedTime": stamp(start + timedelta(minutes=n)),
            },
        }
        for n in range(1, 1201)
    ]
    asked: list[tuple[str, str]] = []

    def cdc(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        params = parse_qs(urlparse(request.url).query)
        entities, since = params["entities"][0], datetime.fromisoformat(params["changedSince"][0])
        asked.append((entities, params["changedSince"][0]))
        rows = [
            p for p in payments if datetime.fromisoformat(p["MetaData"]["LastUpdatedTime"]) >= since
        ]
        blocks: list[dict[str, Any]] = []
        if "Payment" in entities:
            blocks.append({"Payment": rows[:1000]} if rows else {})
        body = {"CDCResponse": [{"QueryResponse": blocks}], "time": stamp(time.now())}
        return 200, {}, jsonutil.dumps(body)

    responses.add_callback(responses.GET, f"{BASE}/cdc", callback=cdc)
    cursor = format_cursor(start)
    got = list(connector.events_since(cursor))  # hints: no invoice is queried for them
    ids = [c.item.event_id for c in got]
    assert len(set(ids)) == 1200  # every payment once, despite the cap
    assert all(c.item.kind is PaymentKind.PAID for c in got)
    assert {c.item.invoice_external_id for c in got} == {"500"}
    cursors = [c.cursor for c in got]
    assert cursors == sorted(cursors)
    # all entities → cap hit → each alone → window ends at the 1000th payment → next window
    assert [a[0] for a in asked] == [
        "Invoice,Payment,CreditMemo",
        "Invoice",
        "Payment",
        "CreditMemo",
        "Invoice,Payment,CreditMemo",
    ]
    assert connector.last_cursor == format_cursor(time.now())
