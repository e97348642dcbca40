"""Write-back through sObject Collections: batching, partial failure, exact numbers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import responses

from billsync.connectors.salesforce import SalesforceDealSource, WriteBackFields
from billsync.connectors.salesforce.actions import dumps_exact, render_record
from billsync.core.canonical import DealWriteBack, InvoiceStatus
from billsync.core.protocols import ConnectorError, ErrorClass
from tests.connectors.salesforce import (
    COLLECTIONS_URL,
    TOKEN_URL,
    dumps,
    error_body,
    limit_header,
    settings,
    sf_id,
    token_body,
)

NOW = datetime(2026, 11, 1, 12, 0, 0, 250000, tzinfo=UTC)


def update(n: int, **overrides: Any) -> DealWriteBack:
    values: dict[str, Any] = {
        "deal_id": sf_id("006", n),
        "target": "quickbooks",
        "invoice_external_id": f"{1000 + n}",
        "invoice_number": f"INV-{n:05d}",
        "invoice_url": f"https://app.qbo.intuit.com/app/invoice?txnId={1000 + n}",
        "status": InvoiceStatus.OPEN,
        "billing_status": "Partially Paid",
        "currency": "USD",
        "amount_paid": Decimal("250.10"),
        "balance": Decimal("1000.00"),
        "last_payment_date": date(2026, 11, 3),
    }
    values.update(overrides)
    return DealWriteBack(**values)


def source(**overrides: Any) -> SalesforceDealSource:
    return SalesforceDealSource(
        settings(**overrides), company_currency="USD", now=lambda: NOW, sleep=lambda s: None
    )


def ok(records: list[dict[str, Any]]) -> str:
    return dumps([{"id": r["id"], "success": True, "errors": []} for r in records])


def sent(call: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(call.request.body)
    return body


def echo_success(request: Any) -> tuple[int, dict[str, str], str]:
    return 200, limit_header(), ok(json.loads(request.body)["records"])


def test_partial_failure_gives_one_error_per_failed_deal() -> None:
    results = [
        {"id": sf_id("006", 1), "success": True, "errors": []},
        {
            "id": sf_id("006", 2),
            "success": False,
            "errors": [
                {
                    "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    "message": "Billing status cannot change after the deal is archived",
                    "fields": ["Billing_Status__c"],
                }
            ],
        },
        {
            "id": sf_id("006", 3),
            "success": False,
            "errors": [
                {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}
            ],
        },
        {
            "id": sf_id("006", 4),
            "success": False,
            "errors": [
                {
                    "statusCode": "INVALID_FIELD",
                    "message": "No such column 'Billing_Status__c' on sobject of type Opportunity",
                    "fields": ["Billing_Status__c"],
                }
            ],
        },
    ]
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        call = rsps.patch(COLLECTIONS_URL, body=dumps(results), headers=limit_header())
        failures = source().write_back([update(n) for n in (1, 2, 3, 4)])
        body = sent(call.calls[0])
    assert set(failures) == {sf_id("006", n) for n in (2, 3, 4)}
    validation, deleted, missing = (failures[sf_id("006", n)] for n in (2, 3, 4))
    assert validation.error_class is ErrorClass.INVALID_DATA
    assert validation.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert validation.deal_id == sf_id("006", 2) and validation.field == "Billing_Status__c"
    assert "cannot change after the deal is archived" in validation.message
    assert deleted.error_class is ErrorClass.NOT_FOUND
    assert missing.message.startswith(
        f"Salesforce rejected the write-back to field Billing_Status__c on Opportunity "
        f"{sf_id('006', 4)}: INVALID_FIELD: No such column 'Billing_Status__c'"
    )
    assert missing.message.endswith(
        "create the field on Opportunity or change writeback in the mapping"
    )
    assert body["allOrNone"] is False and len(body["records"]) == 4


def test_records_carry_exact_numbers_labels_and_the_sync_time() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        call = rsps.add_callback(responses.PATCH, COLLECTIONS_URL, callback=echo_success)
        assert source().write_back([update(1, amount_paid=Decimal("1234.50"))]) == {}
        raw = call.calls[0].request.body
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    assert '"Billing_Amount_Paid__c":1234.50' in text  # an exact JSON number, not a string
    assert '"Billing_Balance_Due__c":1000.00' in text
    assert json.loads(text, parse_float=Decimal)["records"][0] == {
        "attributes": {"type": "Opportunity"},
        "id": sf_id("006", 1),
        "Billing_Status__c": "Partially Paid",
        "Billing_Invoice_Id__c": "1001",
        "Billing_Invoice_Number__c": "INV-00001",
        "Billing_Invoice_URL__c": "https://app.qbo.intuit.com/app/invoice?txnId=1001",
        "Billing_Amount_Paid__c": Decimal("1234.50"),
        "Billing_Balance_Due__c": Decimal("1000.00"),
        "Billing_Amount_Refunded__c": 0,
        "Billing_Amount_Credited__c": 0,
        "Billing_Tax__c": None,
        "Billing_Total__c": None,
        "Billing_Due_Date__c": None,
        "Billing_Last_Payment_Date__c": "2026-11-03",
        "Billing_Sync_Error__c": None,
        "Billing_Synced_At__c": "2026-11-01T12:00:00.250Z",
    }


def test_batches_of_at_most_200() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        call = rsps.add_callback(responses.PATCH, COLLECTIONS_URL, callback=echo_success)
        assert source().write_back([update(n) for n in range(450)]) == {}
        sizes = [len(sent(c)["records"]) for c in call.calls]
    assert sizes == [200, 200, 50]


def test_configured_batch_size_and_fields() -> None:
    fields = WriteBackFields(invoice_url=None, synced_at=None, status="Invoice_State__c")
    src = SalesforceDealSource(
        settings(writeback_batch_size=2), company_currency="USD", writeback_fields=fields
    )
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        call = rsps.add_callback(responses.PATCH, COLLECTIONS_URL, callback=echo_success)
        src.write_back([update(n) for n in range(3)])
        record = sent(call.calls[0])["records"][0]
        assert len(call.calls) == 2
    assert "Billing_Invoice_URL__c" not in record and "Billing_Synced_At__c" not in record
    assert record["Invoice_State__c"] == "Partially Paid"


def test_unchanged_deals_are_not_rewritten_and_no_call_when_nothing_changed() -> None:
    same = {sf_id("006", n): update(n) for n in range(3)}
    with responses.RequestsMock() as rsps:  # no call registered: any request fails
        assert source().write_back(list(same.values()), previous=same) == {}
    changed = [update(0), update(1, amount_paid=Decimal("1250.10"), balance=Decimal("0"))]
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        call = rsps.add_callback(responses.PATCH, COLLECTIONS_URL, callback=echo_success)
        source().write_back(
            [*changed, update(2)], {sf_id("006", 2): "QuickBooks refused"}, previous=same
        )
        ids = [r["id"] for r in sent(call.calls[0])["records"]]
    assert ids == [sf_id("006", 1), sf_id("006", 2)]  # 0 unchanged; 2 has an error now


def test_error_only_records_and_long_errors() -> None:
    record = render_record(
        sf_id("006", 9),
        None,
        fields=WriteBackFields(),
        error="Item 'Consulting' is inactive in QuickBooks; reactivate it. " * 10,
        synced_at=NOW,
    )
    assert record["Billing_Status__c"] == "Error"
    assert "Billing_Invoice_Id__c" not in record
    assert len(record["Billing_Sync_Error__c"]) == 255
    assert record["Billing_Sync_Error__c"].endswith("…")


def test_a_request_level_failure_stops_the_write_back_and_fails_the_rest() -> None:
    calls = {"n": 0}

    def second_fails(request: Any) -> tuple[int, dict[str, str], str]:
        calls["n"] += 1
        if calls["n"] == 1:
            return echo_success(request)
        return 503, {}, error_body("SERVER_UNAVAILABLE", "Server temporarily unavailable")

    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.add_callback(responses.PATCH, COLLECTIONS_URL, callback=second_fails)
        failures = source().write_back([update(n) for n in range(450)])
    assert calls["n"] == 1 + 3  # batch 1, then batch 2 with its retries; batch 3 never sent
    assert set(failures) == {sf_id("006", n) for n in range(200, 450)}
    error = failures[sf_id("006", 420)]
    assert error.error_class is ErrorClass.TRANSIENT and error.deal_id == sf_id("006", 420)


def test_nothing_written_raises_and_auth_failure_stops_further_calls() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, status=400, json={"error": "invalid_client", "error_description": "x"})
        with pytest.raises(ConnectorError) as exc:
            source().write_back([update(n) for n in range(450)])
        assert len(rsps.calls) == 1  # one token attempt; batches 2 and 3 never tried
    assert exc.value.error_class is ErrorClass.AUTH


def test_the_label_and_the_new_amounts_go_on_the_wire() -> None:
    """The label is the update's (one mapping, in billsync.core.money_state); the write-back
    carries refunded, credited, tax, total and due date; no invoice means Error."""
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        call = rsps.add_callback(responses.PATCH, COLLECTIONS_URL, callback=echo_success)
        deal = update(
            1,
            billing_status="Disputed",
            amount_refunded=Decimal("10.00"),
            amount_credited=Decimal("5.50"),
            tax=Decimal("8.25"),
            total=Decimal("108.25"),
            due_date=date(2026, 12, 31),
        )
        source().write_back([deal], {sf_id("006", 2): "mapping problem"})
        first, second = sent(call.calls[0])["records"]
    assert first["Billing_Status__c"] == "Disputed"
    assert (first["Billing_Amount_Refunded__c"], first["Billing_Amount_Credited__c"]) == (10, 5.5)
    assert (first["Billing_Tax__c"], first["Billing_Total__c"]) == (8.25, 108.25)
    assert first["Billing_Due_Date__c"] == "2026-12-31"
    assert second["Billing_Status__c"] == "Error"


def test_dumps_exact() -> None:
    value = {"a": Decimal("0.10"), "b": [1, True, None, 'x"y'], "d": date(2026, 1, 2)}
    assert dumps_exact(value) == '{"a":0.10,"b":[1,true,null,"x\\"y"],"d":"2026-01-02"}'
    with pytest.raises(TypeError):
        dumps_exact({"f": 0.1})
    with pytest.raises(ValueError, match="naive"):
        dumps_exact(datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        dumps_exact(Decimal("NaN"))
