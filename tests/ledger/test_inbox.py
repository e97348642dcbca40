"""The webhook inbox: duplicate deliveries are no-ops, claims are exclusive."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from billsync.sync.ledger import InboxStatus
from billsync.sync.ledger.schema import inbox
from tests.ledger.conftest import T0, run_concurrently

BODY = b'{"id":"evt_1","type":"invoice.paid"}\x00\xff'  # raw bytes, not necessarily UTF-8
HEADERS = {"Stripe-Signature": "t=1,v1=abc", "Content-Type": "application/json"}


def count_rows(ledger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(inbox)).scalar_one())


def test_store_and_read_back_raw(ledger):
    assert ledger.store_inbox_event("stripe", "evt_1", BODY, HEADERS)
    (event,) = ledger.claim_inbox_events(10, "w1")
    assert (event.provider, event.event_id) == ("stripe", "evt_1")
    assert event.body == BODY and isinstance(event.body, bytes)
    assert event.headers == HEADERS
    assert event.received_at == T0
    assert (event.status, event.attempts, event.claimed_by) == ("processing", 1, "w1")


def test_duplicate_event_is_a_no_op(ledger):
    assert ledger.store_inbox_event("stripe", "evt_1", BODY, HEADERS)
    assert not ledger.store_inbox_event("stripe", "evt_1", b"other", {})
    assert count_rows(ledger) == 1
    assert ledger.store_inbox_event("quickbooks", "evt_1", BODY, {})  # ids are per provider


def test_body_must_be_bytes(ledger):
    with pytest.raises(TypeError):
        ledger.store_inbox_event("stripe", "evt_1", BODY.decode("latin-1"), HEADERS)


def test_concurrent_duplicate_deliveries_store_one_row(ledger):
    results = run_concurrently(
        lambda i: ledger.store_inbox_event("stripe", "evt_dup", BODY, HEADERS), 8
    )
    assert results.count(True) == 1
    assert count_rows(ledger) == 1


def test_claims_oldest_first_and_only_once(ledger):
    for i in range(5):
        ledger.store_inbox_event("stripe", f"evt_{i}", BODY, {})
    first = ledger.claim_inbox_events(3, "w1")
    second = ledger.claim_inbox_events(3, "w2")
    assert [e.event_id for e in first] == ["evt_0", "evt_1", "evt_2"]
    assert [e.event_id for e in second] == ["evt_3", "evt_4"]
    assert ledger.claim_inbox_events(3, "w3") == []


def test_expired_claim_is_taken_over(ledger, clock):
    ledger.store_inbox_event("stripe", "evt_1", BODY, {})
    ledger.claim_inbox_events(1, "crashed", claim_for=timedelta(minutes=5))
    clock.advance(timedelta(minutes=4))
    assert ledger.claim_inbox_events(1, "w2") == []
    clock.advance(timedelta(minutes=1))
    (event,) = ledger.claim_inbox_events(1, "w2")
    assert (event.claimed_by, event.attempts) == ("w2", 2)


def test_done_and_failed(ledger, clock):
    for i in range(3):
        ledger.store_inbox_event("stripe", f"evt_{i}", BODY, {})
    done, retry, failed = ledger.claim_inbox_events(3, "w1")
    clock.advance(timedelta(seconds=2))
    assert ledger.mark_inbox_done(done.id)
    assert ledger.mark_inbox_failed(retry.id, "Stripe 503", retry=True)
    assert ledger.mark_inbox_failed(failed.id, "unknown invoice")
    assert not ledger.mark_inbox_done(999_999)

    stored = ledger.get_inbox_event(done.id)
    assert (stored.status, stored.processed_at, stored.claimed_by) == ("done", clock.now, None)
    stored = ledger.get_inbox_event(failed.id)
    assert (stored.status, stored.error) == ("failed", "unknown invoice")
    (again,) = ledger.claim_inbox_events(10, "w2")
    assert again.id == retry.id and again.attempts == 2
    assert ledger.inbox_counts() == {"pending": 0, "processing": 1, "done": 1, "failed": 1}


def test_inbox_lag(ledger, clock):
    assert ledger.inbox_lag(T0) == timedelta(0)
    ledger.store_inbox_event("stripe", "evt_1", BODY, {})
    clock.advance(timedelta(seconds=30))
    ledger.store_inbox_event("stripe", "evt_2", BODY, {})
    assert ledger.inbox_lag(T0 + timedelta(seconds=90)) == timedelta(seconds=90)
    first, second = ledger.claim_inbox_events(2, "w1")
    ledger.mark_inbox_done(first.id)
    assert ledger.inbox_lag(T0 + timedelta(seconds=90)) == timedelta(seconds=60)
    ledger.mark_inbox_done(second.id)
    assert ledger.inbox_lag(T0 + timedelta(seconds=90)) == timedelta(0)


def test_concurrent_claims_are_disjoint(ledger):
    for i in range(60):
        ledger.store_inbox_event("stripe", f"evt_{i}", BODY, {})

    def drain(worker: int) -> list[int]:
        got: list[int] = []
        while batch := ledger.claim_inbox_events(4, f"w{worker}"):
            got.extend(e.id for e in batch)
        return got

    claimed = [i for ids in run_concurrently(drain, 4) for i in ids]
    assert len(claimed) == 60 == len(set(claimed))
    assert ledger.inbox_counts()[InboxStatus.PROCESSING] == 60


def test_released_claims_go_back_to_pending_without_counting_an_attempt(ledger):
    for n in range(3):
        ledger.store_inbox_event("stripe", f"evt_{n}", BODY, HEADERS)
    first, second, third = ledger.claim_inbox_events(10, "w1")
    ledger.mark_inbox_done(first.id)
    assert ledger.release_inbox_claims([first.id, second.id, third.id]) == 2  # done stays done
    assert ledger.get_inbox_event(first.id).status == InboxStatus.DONE.value
    again = ledger.claim_inbox_events(10, "w2")
    assert [e.id for e in again] == [second.id, third.id]
    assert all(e.attempts == 1 and e.claimed_by == "w2" for e in again)
    assert ledger.release_inbox_claims([]) == 0
