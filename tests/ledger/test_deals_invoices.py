"""Deal intents (exactly once) and invoices."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from billsync.sync.ledger import DealState, IntentConflict
from tests.ledger.conftest import T0


def key(deal: str, rev: str = "r1") -> str:
    return f"{deal}:stripe:{rev}"


def test_record_intent_creates_an_invoicing_row(ledger):
    deal = ledger.record_intent("006A", "stripe", "2025-03-01T10:00:00Z", key("006A"))
    assert deal.state == DealState.INVOICING
    assert (deal.revision, deal.idempotency_key) == ("2025-03-01T10:00:00Z", key("006A"))
    assert deal.intent_at == T0 and deal.created_at == T0
    assert deal.external_invoice_id is None
    assert ledger.get_deal("006A", "stripe") == deal
    assert ledger.get_deal("006A", "quickbooks") is None


def test_same_intent_again_is_a_no_op(ledger, clock):
    first = ledger.record_intent("006A", "stripe", "r1", key("006A"))
    clock.advance(timedelta(minutes=1))
    again = ledger.record_intent("006A", "stripe", "r1", key("006A"))
    assert again == first  # after a crash: still invoicing, look up before create


def test_new_intent_refused_while_one_is_in_flight(ledger):
    ledger.record_intent("006A", "stripe", "r1", key("006A"))
    with pytest.raises(IntentConflict) as caught:
        ledger.record_intent("006A", "stripe", "r2", key("006A", "r2"))
    assert caught.value.current.revision == "r1"


def test_new_intent_refused_once_invoiced(ledger):
    ledger.record_intent("006A", "stripe", "r1", key("006A"))
    assert ledger.set_deal_state(
        "006A", "stripe", DealState.INVOICED, external_invoice_id="in_1", last_error=None
    )
    with pytest.raises(IntentConflict):
        ledger.record_intent("006A", "stripe", "r2", key("006A", "r2"))


def test_new_revision_replaces_a_failed_intent(ledger, clock):
    ledger.record_intent("006A", "stripe", "r1", key("006A"))
    ledger.set_deal_state("006A", "stripe", DealState.NEEDS_ATTENTION, last_error="no price")
    clock.advance(timedelta(hours=1))
    deal = ledger.record_intent("006A", "stripe", "r2", key("006A", "r2"))
    assert (deal.state, deal.revision, deal.idempotency_key) == (
        "invoicing",
        "r2",
        key("006A", "r2"),
    )
    assert deal.last_error is None
    assert deal.intent_at == clock.now and deal.created_at == T0


def test_idempotency_keys_are_unique_across_deals(ledger):
    ledger.record_intent("006A", "stripe", "r1", "same-key")
    with pytest.raises(sa.exc.IntegrityError):
        ledger.record_intent("006B", "stripe", "r1", "same-key")


def test_set_deal_state_leaves_unnamed_columns_alone(ledger):
    ledger.record_intent("006A", "stripe", "r1", key("006A"))
    ledger.set_deal_state("006A", "stripe", DealState.FAILED, last_error="timeout")
    ledger.set_deal_state("006A", "stripe", DealState.INVOICING)
    deal = ledger.get_deal("006A", "stripe")
    assert deal is not None
    assert deal.last_error == "timeout"
    ledger.set_deal_state("006A", "stripe", DealState.INVOICED, last_error=None, revision="r1b")
    deal = ledger.get_deal("006A", "stripe")
    assert deal is not None
    assert (deal.last_error, deal.revision) == (None, "r1b")


def test_set_deal_state_compare_and_set(ledger):
    ledger.record_intent("006A", "stripe", "r1", key("006A"))
    assert not ledger.set_deal_state(
        "006A", "stripe", DealState.INVOICED, expected_state=DealState.FAILED
    )
    assert ledger.set_deal_state(
        "006A", "stripe", DealState.INVOICED, expected_state=DealState.INVOICING
    )
    assert not ledger.set_deal_state("nope", "stripe", DealState.INVOICED)


def test_deals_in_state_pages_through_everything_once(ledger):
    for i in range(7):
        ledger.record_intent(f"006{i}", "stripe", "r1", key(f"006{i}"))
        ledger.record_intent(f"006{i}", "quickbooks", "r1", f"006{i}:qbo:r1")
    ledger.set_deal_state("0063", "stripe", DealState.INVOICED)

    seen = []
    for deal in ledger.deals_in_state(DealState.INVOICING, batch_size=3):
        seen.append((deal.deal_id, deal.target))
        # Writing mid-iteration must work: no read transaction is held open.
        ledger.set_deal_state(deal.deal_id, deal.target, DealState.FAILED)
    assert len(seen) == 13 == len(set(seen))
    assert seen == sorted(seen)
    assert [d.deal_id for d in ledger.deals_in_state(DealState.INVOICED)] == ["0063"]
    stripe_failed = list(ledger.deals_in_state(DealState.FAILED, "stripe", batch_size=2))
    assert len(stripe_failed) == 6
    assert {d.target for d in stripe_failed} == {"stripe"}


def test_upsert_invoice_inserts_then_updates_keeping_links(ledger, clock):
    created = ledger.upsert_invoice(
        target="stripe",
        external_id="in_1",
        deal_id="006A",
        number="INV-0001",
        url="https://pay.example/in_1",
        currency="EUR",
        total=Decimal("1250.50"),
        status="open",
    )
    assert created.amount_paid == Decimal(0)
    assert created.balance == Decimal("1250.5")
    clock.advance(timedelta(minutes=3))
    updated = ledger.upsert_invoice(
        target="stripe", external_id="in_1", currency="EUR", total=Decimal("1250.50"), status="paid"
    )
    assert (updated.deal_id, updated.number, updated.url) == (
        "006A",
        "INV-0001",
        "https://pay.example/in_1",
    )
    assert updated.status == "paid"
    assert updated.created_at == T0 and updated.updated_at == clock.now
    assert ledger.get_invoice("stripe", "in_1") == updated
    assert ledger.get_invoice("quickbooks", "in_1") is None


def test_upsert_invoice_refuses_float_totals(ledger):
    with pytest.raises(TypeError):
        ledger.upsert_invoice(
            target="stripe", external_id="in_1", currency="USD", total=19.99, status="open"
        )


def test_invoice_for_deal_prefers_the_linked_invoice(ledger, clock):
    ledger.record_intent("006A", "stripe", "r1", key("006A"))
    for external_id in ("in_first", "in_dup"):
        ledger.upsert_invoice(
            target="stripe",
            external_id=external_id,
            deal_id="006A",
            currency="USD",
            total=Decimal(10),
            status="open",
        )
        clock.advance(timedelta(seconds=1))
    newest = ledger.invoice_for_deal("006A", "stripe")
    assert newest is not None and newest.external_id == "in_dup"  # not linked yet: newest
    ledger.set_deal_state("006A", "stripe", DealState.INVOICED, external_invoice_id="in_first")
    linked = ledger.invoice_for_deal("006A", "stripe")
    assert linked is not None and linked.external_id == "in_first"
    assert [i.external_id for i in ledger.invoices_for_deal("006A", "stripe")] == [
        "in_first",
        "in_dup",
    ]
    assert ledger.invoice_for_deal("006A", "quickbooks") is None
