"""Invoices exactly once against the sandbox: bodies, batches, faults, replays, adoption,
stale SyncTokens and throttling."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from billsync.connectors.quickbooks import QuickBooksConnector
from billsync.connectors.quickbooks.actions import batch_id, batch_request_id
from billsync.core.canonical import InvoiceDraft, InvoiceStatus
from billsync.core.protocols import ConnectorError, ErrorClass
from tests.connectors.quickbooks.conftest import Qbo, customer, draft, line

DROP_AFTER = {"systems": ["quickbooks"], "drop_rate": 1.0, "drop_phase": "after"}


def ready(qbo: Qbo, **overrides: Any) -> QuickBooksConnector:
    """A connector whose token and catalog are loaded (so faults hit only the writes)."""
    connector = qbo.connector(**overrides)
    connector.catalog().term_exists("Net 30")
    connector.catalog().tax_code_exists("TAX")
    assert connector.catalog().home_currency == "USD"
    return connector


def deals(qbo: Qbo, count: int, start: int = 1) -> list[InvoiceDraft]:
    seat, plat = qbo.item_id("SEAT"), qbo.item_id("PLAT-SUB")
    return [
        draft(
            f"006000000{n:06d}AAA",
            customer(1 + n % 3),
            (line(plat, "1", "1200.00"), line(seat, "3", "33.33", discount_percent=Decimal("15"))),
        )
        for n in range(start, start + count)
    ]


def test_single_invoice_carries_every_field_and_the_exact_total(qbo: Qbo) -> None:
    seat, plat = qbo.item_id("SEAT"), qbo.item_id("PLAT-SUB")
    buyer = customer(1)
    lines = (
        line(
            plat,
            "2",
            "1200.00",
            discount_percent=Decimal("12.5"),
            tax_code="TAX",
            service_date=date(2026, 11, 1),
            description="Platform, annual",
        ),
        line(seat, "7", "33.33", discount_percent=Decimal("15")),
        line(seat, "1.5", "99.99"),
    )
    intended = draft("006000000000001AAA", buyer, lines, po_number="PO-77")
    ref = qbo.connector().create_invoice(intended)
    [record] = qbo.invoices()
    assert ref.external_id == record["Id"]
    assert ref.total == intended.total == Decimal(str(record["TotalAmt"]))
    assert ref.status is InvoiceStatus.OPEN and ref.balance == intended.total
    assert ref.deal_id == intended.deal_id and ref.number == "006000000000001AAA"
    assert record["PrivateNote"] == "billsync deal 006000000000001AAA; PO PO-77"
    assert record["CustomerMemo"]["value"] == intended.memo
    assert record["BillEmail"]["Address"] == buyer.email
    assert record["SalesTermRef"]["name"] == "Net 30"
    assert record["DueDate"] == "2026-12-02"
    sales = [ln for ln in record["Line"] if ln["DetailType"] == "SalesItemLineDetail"]
    first = sales[0]["SalesItemLineDetail"]
    assert (first["Qty"], Decimal(str(first["UnitPrice"]))) == (2, Decimal("1200"))
    assert first["TaxCodeRef"]["value"] == "TAX" and first["ServiceDate"] == "2026-11-01"
    [discount] = [ln for ln in record["Line"] if ln["DetailType"] == "DiscountLineDetail"]
    assert Decimal(str(discount["Amount"])) == Decimal("300.00") + Decimal("35.00")
    assert "CurrencyRef" not in record or record["CurrencyRef"]["value"] == "USD"
    assert record.get("ExchangeRate") in (None, 1)
    assert qbo.connector(holder="other").take_discrepancies() == []


def test_a_batch_with_a_fault_item_creates_the_others(qbo: Qbo) -> None:
    connector = ready(qbo)
    drafts = deals(qbo, 35)
    broken = draft(
        "006BROKEN000000AAA", customer(1), (line(qbo.item_id("OLD"), "1", "10.00"),)
    )  # an inactive item: QBO answers this item with 610 inside an HTTP 200
    connector.ensure_customers([d.customer for d in drafts])
    qbo.reset_calls()
    results = connector.create_invoices([*drafts, broken])
    error = results[broken.deal_id]
    assert isinstance(error, ConnectorError)
    assert (error.error_class, error.code, error.deal_id) == (
        ErrorClass.INVALID_DATA,
        "610",
        broken.deal_id,
    )
    assert "Legacy widget" in error.message
    created = [r for r in results.values() if not isinstance(r, ConnectorError)]
    assert len(created) == 35 and len(qbo.invoices()) == 35
    calls = qbo.calls()
    assert calls["POST batch"] == 2  # 36 drafts: 30 + 6
    assert "POST invoice" not in calls


def test_requestid_replay_after_a_lost_answer_single(qbo: Qbo) -> None:
    connector = ready(qbo, retry_attempts=2, lookup_before_create=False)
    [intended] = deals(qbo, 1)
    connector.ensure_customer(intended.customer)
    qbo.admin("POST", "faults", DROP_AFTER)
    with pytest.raises(ConnectorError) as caught:
        connector.create_invoice(intended)
    qbo.admin("POST", "faults", {})
    assert caught.value.error_class is ErrorClass.TRANSIENT
    assert len(qbo.invoices()) == 1  # QuickBooks did create it
    ref = connector.create_invoice(intended)  # same requestid: the original answer
    assert len(qbo.invoices()) == 1
    assert ref.external_id == qbo.invoices()[0]["Id"]


def test_requestid_replay_after_a_lost_answer_batch(qbo: Qbo) -> None:
    connector = ready(qbo, retry_attempts=2, lookup_before_create=False)
    drafts = deals(qbo, 5)
    connector.ensure_customers([d.customer for d in drafts])
    qbo.admin("POST", "faults", DROP_AFTER)
    lost = connector.create_invoices(drafts)
    qbo.admin("POST", "faults", {})
    assert all(isinstance(r, ConnectorError) and r.is_retryable for r in lost.values())
    assert len(qbo.invoices()) == 5
    qbo.reset_calls()
    again = connector.create_invoices(drafts)
    assert len(qbo.invoices()) == 5
    assert {r.external_id for r in again.values() if not isinstance(r, ConnectorError)} == {
        i["Id"] for i in qbo.invoices()
    }
    assert qbo.calls() == {"POST batch": 1}  # replayed, nothing written


def test_a_crashed_attempt_is_found_by_the_deal_and_adopted(qbo: Qbo) -> None:
    """The next process knows nothing (the requestid memory is QuickBooks'); the
    engine's lookup finds the invoice, and lookup-before-create adopts it."""
    connector = ready(qbo, retry_attempts=1, lookup_before_create=False)
    drafts = deals(qbo, 3)
    connector.ensure_customers([d.customer for d in drafts])
    qbo.admin("POST", "faults", DROP_AFTER)
    connector.create_invoices(drafts)
    qbo.admin("POST", "faults", {})
    fresh = qbo.connector(holder="after-crash")
    [found] = fresh.find_invoices(drafts[0].deal_id)
    assert found.deal_id == drafts[0].deal_id and found.total == drafts[0].total
    # a later run sends the drafts in another batch (another requestid): still adopted
    results = fresh.create_invoices([*drafts, *deals(qbo, 1, start=50)])
    assert all(not isinstance(r, ConnectorError) for r in results.values())
    assert len(qbo.invoices()) == 4


def test_duplicate_doc_number_of_our_own_deal_is_adopted(qbo: Qbo) -> None:
    connector = ready(qbo, lookup_before_create=False)
    [first] = deals(qbo, 1)
    created = connector.create_invoice(first)
    # same deal, new revision → new idempotency key and requestid; QBO says 6140
    second = draft(
        first.deal_id,
        first.customer,
        first.lines,
        deal_revision=datetime(2026, 11, 3, tzinfo=UTC),
    )
    assert connector.create_invoice(second).external_id == created.external_id
    assert len(qbo.invoices()) == 1


def test_duplicate_doc_number_of_another_deal_is_invalid_data(qbo: Qbo) -> None:
    connector = ready(qbo)
    [first] = deals(qbo, 1)
    connector.create_invoice(first)
    other = draft("006OTHER0000000AAA", first.customer, first.lines, doc_number=first.doc_number)
    with pytest.raises(ConnectorError) as caught:
        connector.create_invoice(other)
    assert (caught.value.code, caught.value.field) == ("6140", "doc_number")
    assert len(qbo.invoices()) == 1


def test_void_refetches_on_a_stale_sync_token_then_gives_up_as_conflict(
    qbo: Qbo, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = ready(qbo)
    [intended] = deals(qbo, 1)
    ref = connector.create_invoice(intended)
    rival = qbo.connector(holder="rival").client
    original_read = connector.client.read
    edits = {"left": 1}

    def read_then_someone_edits(entity: str, entity_id: str) -> dict[str, Any]:
        record = original_read(entity, entity_id)
        if edits["left"] > 0:
            edits["left"] -= 1
            rival.call(
                "POST",
                "invoice",
                body={
                    "Id": entity_id,
                    "SyncToken": record["SyncToken"],
                    "sparse": True,
                    "CustomerMemo": {"value": "edited by a person"},
                },
            )
        return record

    monkeypatch.setattr(connector.client, "read", read_then_someone_edits)
    voided = connector.void_invoice(ref.external_id)
    assert voided.status is InvoiceStatus.VOID and voided.total == 0
    [second] = deals(qbo, 1, start=2)
    other = connector.create_invoice(second)
    edits["left"] = 2
    with pytest.raises(ConnectorError) as caught:
        connector.void_invoice(other.external_id)
    assert caught.value.error_class is ErrorClass.CONFLICT and caught.value.code == "5010"


@pytest.mark.parametrize("page", ["xml", "json"])
def test_throttled_calls_wait_sixty_seconds_and_succeed(qbo: Qbo, page: str) -> None:
    connector = ready(qbo)
    qbo.admin("POST", "quickbooks/throttle", {"count": 2, "format": page})
    qbo.reset_calls()
    sleeps_before = len(qbo.time.sleeps)
    assert connector.find_invoices("006NONE00000000AAA") == []
    assert qbo.calls() == {"POST query": 3}
    waits = qbo.time.sleeps[sleeps_before:]
    assert waits.count(60) >= 2 and max(waits) == 60


def test_throttle_wait_is_configurable(qbo: Qbo) -> None:
    connector = ready(qbo, throttle_wait_s=5)
    qbo.admin("POST", "quickbooks/throttle", {"count": 1})
    sleeps_before = len(qbo.time.sleeps)
    connector.find_invoices("006NONE00000000AAA")
    assert max(qbo.time.sleeps[sleeps_before:]) < 30


def test_a_batch_still_throttled_after_its_retries_falls_back_to_single_creates(qbo: Qbo) -> None:
    connector = ready(qbo, retry_attempts=2, lookup_before_create=False)
    drafts = deals(qbo, 3)
    connector.ensure_customers([d.customer for d in drafts])
    qbo.admin("POST", "quickbooks/throttle", {"count": 2})
    qbo.reset_calls()
    results = connector.create_invoices(drafts)
    assert all(not isinstance(r, ConnectorError) for r in results.values())
    assert qbo.calls() == {"POST batch": 2, "POST invoice": 3}
    assert len(qbo.invoices()) == 3


def test_send_after_create(qbo: Qbo) -> None:
    connector = ready(qbo, send_after_create=True)
    [intended] = deals(qbo, 1)
    connector.create_invoice(intended)
    [record] = qbo.invoices()
    assert record["EmailStatus"] == "EmailSent"


def test_a_foreign_currency_draft_is_refused_not_booked_at_one_to_one(qbo: Qbo) -> None:
    connector = ready(qbo)
    eur = customer(9, currency="EUR")
    intended = InvoiceDraft.with_total(
        **{
            **deals(qbo, 1)[0].model_dump(exclude={"total", "customer", "currency", "lines"}),
            "customer": eur,
            "currency": "EUR",
            "lines": (line(qbo.item_id("SEAT")),),
        }
    )
    assert connector.catalog().currency_problem("EUR") is not None
    with pytest.raises(ConnectorError) as caught:
        connector.create_invoice(intended)
    assert caught.value.field == "currency" and "exchange rate" in caught.value.message
    assert qbo.invoices() == []


def test_request_and_batch_ids_fit_intuits_limits() -> None:
    drafts = [draft(f"006{n:015d}", customer(1), (line("1"),)) for n in range(30)]
    rid = batch_request_id(drafts)
    assert len(rid) <= 36 and rid == batch_request_id(list(reversed(drafts)))
    bids = [batch_id(i, d) for i, d in enumerate(drafts)]
    assert all(len(b) <= 10 for b in bids) and len(set(bids)) == 30


def test_the_planner_sees_an_inactive_item_and_a_missing_one(qbo: Qbo) -> None:
    from billsync.core.catalog import ProductQuery
    from billsync.core.idempotency import invoice_key
    from billsync.mappings.loader import load_mappings
    from billsync.mappings.plan import Planner, Rejected, plan_invoice
    from tests.mappings.conftest import make_deal, make_line

    catalog = ready(qbo).catalog()
    inactive = catalog.resolve_product(ProductQuery("OLD", "USD", (("sku", "OLD"),)))
    assert inactive is not None and not inactive.active and inactive.label == "Legacy widget"
    assert catalog.resolve_product(ProductQuery("NOPE", "USD", (("sku", "NOPE"),))) is None
    by_name = catalog.resolve_product(
        ProductQuery("Training", "USD", (("sku", "Training"), ("name", "Training")))
    )
    assert by_name is not None and by_name.label == "Training"
    planner = Planner(
        mapping=load_mappings(),
        catalogs={"quickbooks": catalog},
        default_target=None,
        idempotency_key=invoice_key,
    )
    deal = make_deal((make_line(1, product_code="OLD"), make_line(2, product_code="NOPE")))
    rejected = plan_invoice(deal, planner)
    assert isinstance(rejected, Rejected)
    reasons = " | ".join(r.reason for r in rejected.rejections)
    assert "'Legacy widget' for product 'OLD' is inactive" in reasons
    assert "product 'NOPE' has no QuickBooks match" in reasons
