"""Ledger batches (one transaction for many calls) and the reads that serve a batch."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from billsync.sync.ledger import DealState, Ledger
from billsync.sync.ledger.base import BatchError
from tests.ledger.conftest import T0


class Boom(Exception):
    pass


def record_outcome(ledger: Ledger, deal_id: str) -> None:
    """The writes the engine makes for one created invoice."""
    ledger.upsert_invoice(
        target="stripe",
        external_id=f"in_{deal_id}",
        currency="USD",
        total=Decimal("10.00"),
        status="open",
        deal_id=deal_id,
    )
    ledger.append_audit("run:r1", "invoice.created", f"deal:{deal_id}", {"total": "10.00"})
    ledger.enqueue("writeback", deal_id, {"deal_id": deal_id}, T0)
    ledger.set_deal_state(
        deal_id, "stripe", DealState.INVOICED, external_invoice_id=f"in_{deal_id}"
    )


def intents(ledger: Ledger, *deal_ids: str) -> None:
    for deal_id in deal_ids:
        ledger.record_intent(deal_id, "stripe", "rev1", f"key-{deal_id}")


def test_a_batch_commits_every_write_together(ledger):
    intents(ledger, "006A", "006B")
    with ledger.batch():
        record_outcome(ledger, "006A")
        record_outcome(ledger, "006B")
        # Reads inside the batch see its own writes.
        assert ledger.get_deal("006A", "stripe").state == DealState.INVOICED
    for deal_id in ("006A", "006B"):
        assert ledger.get_deal(deal_id, "stripe").external_invoice_id == f"in_{deal_id}"
        assert ledger.invoice_for_deal(deal_id, "stripe").total == Decimal("10.00")
        assert ledger.find_work("writeback", deal_id) is not None
        assert [e.action for e in ledger.audit_for(f"deal:{deal_id}")] == ["invoice.created"]


def test_a_failing_batch_leaves_nothing_behind(ledger):
    intents(ledger, "006A", "006B")
    with pytest.raises(Boom), ledger.batch():
        record_outcome(ledger, "006A")
        record_outcome(ledger, "006B")
        raise Boom
    # All or nothing: both intents are still open (the next run looks them up), and
    # no invoice, audit row or write-back of the batch survived.
    for deal_id in ("006A", "006B"):
        record = ledger.get_deal(deal_id, "stripe")
        assert (record.state, record.external_invoice_id) == (DealState.INVOICING, None)
        assert ledger.invoice_for_deal(deal_id, "stripe") is None
        assert ledger.find_work("writeback", deal_id) is None
        assert ledger.audit_for(f"deal:{deal_id}") == []


def test_nested_batches_join_the_outer_transaction(ledger):
    intents(ledger, "006A")
    with pytest.raises(Boom), ledger.batch():
        with ledger.batch():
            record_outcome(ledger, "006A")
        raise Boom  # the inner block ended, but nothing was committed yet
    assert ledger.get_deal("006A", "stripe").state == DealState.INVOICING
    assert ledger.invoice_for_deal("006A", "stripe") is None


def test_intents_and_credentials_refuse_to_join_a_batch(ledger):
    # They must be committed before the vendor call that follows them.
    for batch in (ledger.batch(), ledger.batch(write=False)):
        with batch:
            with pytest.raises(BatchError, match="intent"):
                ledger.record_intent("006A", "stripe", "rev1", "key-1")
            with pytest.raises(BatchError, match="credential"):
                ledger.save_credentials("quickbooks", {"refresh_token": "x"}, None)
    assert ledger.get_deal("006A", "stripe") is None
    intents(ledger, "006A")  # and outside a batch they work as before
    assert ledger.get_deal("006A", "stripe").state == DealState.INVOICING


def test_a_read_batch_does_not_hold_back_writes(ledger):
    intents(ledger, "006A")
    with ledger.batch(write=False):
        assert ledger.get_deal("006A", "stripe").state == DealState.INVOICING
        ledger.set_deal_state("006A", "stripe", DealState.FAILED, last_error="timeout")
    # The write committed on its own connection, not with the read batch.
    assert ledger.get_deal("006A", "stripe").state == DealState.FAILED


def test_batches_are_per_thread(ledger):
    intents(ledger, "006A", "006B")
    entered, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            with ledger.batch():
                record_outcome(ledger, "006B")
                entered.set()
                release.wait(10)
                raise Boom
        except Boom:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=other_thread)
    worker.start()
    assert entered.wait(10)
    # This thread is outside any batch: its read does not see the other's uncommitted
    # writes, and its intent is allowed (it is not inside the other thread's batch).
    assert ledger.get_deal("006B", "stripe").state == DealState.INVOICING
    release.set()
    worker.join(10)
    assert errors == []
    intents(ledger, "006C")
    assert ledger.get_deal("006B", "stripe").state == DealState.INVOICING
    assert ledger.get_deal("006C", "stripe") is not None


def test_deals_for_reads_every_target_of_the_deals(ledger):
    intents(ledger, "006A", "006B")
    ledger.record_intent("006A", "quickbooks", "rev1", "key-qbo")
    found = ledger.deals_for(["006A", "006B", "006Z", "006A"])
    assert sorted(found) == [("006A", "quickbooks"), ("006A", "stripe"), ("006B", "stripe")]
    assert found[("006A", "quickbooks")] == ledger.get_deal("006A", "quickbooks")
    assert ledger.deals_for([]) == {}


def test_bulk_reads_cover_more_ids_than_one_query_takes(ledger):
    ids = [f"006{n:05d}" for n in range(1203)]
    with ledger.batch():
        for deal_id in ids:
            ledger.enqueue("invoice", deal_id, {"deal_id": deal_id}, T0)
            ledger.link_customer("stripe", f"acct-{deal_id}", f"cus_{deal_id}")
    work = ledger.find_work_for("invoice", [*ids, "unknown"])
    assert sorted(work) == ids
    assert work[ids[-1]] == ledger.find_work("invoice", ids[-1])
    assert ledger.find_work_for("writeback", ids) == {}
    links = ledger.linked_customers("stripe", [f"acct-{i}" for i in ids] + ["acct-none"])
    assert len(links) == len(ids) and links[f"acct-{ids[0]}"] == f"cus_{ids[0]}"
    assert ledger.linked_customers("quickbooks", [f"acct-{ids[0]}"]) == {}
