"""The retry queue: leasing, outcomes, re-enqueue, operator actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from billsync.sync.ledger import (
    INVALID_DATA,
    Ledger,
    WorkStatus,
    create_ledger_engine,
    upgrade_to_head,
)
from billsync.sync.ledger.schema import work_items
from tests.ledger.conftest import T0, FakeClock, run_concurrently

LEASE = timedelta(minutes=5)


def enqueue(ledger, key="006A", when=T0, **kw):
    return ledger.enqueue("create_invoice", key, {"deal": key}, when, **kw)


def lease_one(ledger, holder="w1", now=T0):
    (item,) = ledger.lease_due_work(now, 1, holder, LEASE)
    return item


def test_enqueue_round_trip(ledger):
    item = enqueue(ledger, revision="r1", mapping_hash="m1")
    assert (item.kind, item.key, item.payload) == ("create_invoice", "006A", {"deal": "006A"})
    assert (item.status, item.attempts, item.requeued) == ("pending", 0, False)
    assert (item.revision, item.mapping_hash) == ("r1", "m1")
    assert item.next_attempt_at == T0 and item.created_at == T0
    assert ledger.get_work(item.id) == item
    assert ledger.find_work("create_invoice", "006A") == item
    assert ledger.get_work(item.id + 1000) is None


def test_only_due_items_are_leased(ledger):
    enqueue(ledger, "later", T0 + timedelta(minutes=1))
    enqueue(ledger, "now", T0)
    (item,) = ledger.lease_due_work(T0, 10, "w1", LEASE)
    assert item.key == "now"
    assert (item.status, item.attempts, item.leased_by) == ("leased", 1, "w1")
    assert item.lease_expires_at == T0 + LEASE
    assert ledger.lease_due_work(T0, 10, "w2", LEASE) == []  # leased items are not due
    assert [i.key for i in ledger.lease_due_work(T0 + timedelta(minutes=1), 10, "w2", LEASE)] == [
        "later"
    ]


def test_leases_oldest_due_first_up_to_limit(ledger):
    for minute in (3, 1, 2):
        enqueue(ledger, f"k{minute}", T0 + timedelta(minutes=minute))
    items = ledger.lease_due_work(T0 + timedelta(hours=1), 2, "w1", LEASE)
    assert [i.key for i in items] == ["k1", "k2"]


def test_expired_lease_is_taken_over(ledger):
    item = enqueue(ledger)
    lease_one(ledger, "crashed")
    assert ledger.lease_due_work(T0 + LEASE - timedelta(seconds=1), 1, "w2", LEASE) == []
    taken = lease_one(ledger, "w2", T0 + LEASE)
    assert (taken.id, taken.leased_by, taken.attempts) == (item.id, "w2", 2)
    assert not ledger.complete_work(item.id, holder="crashed")  # too late: it moved on
    assert ledger.complete_work(item.id, holder="w2")


def test_complete(ledger):
    item = enqueue(ledger)
    lease_one(ledger)
    assert ledger.complete_work(item.id, holder="w1")
    done = ledger.get_work(item.id)
    assert (done.status, done.leased_by, done.lease_expires_at) == ("done", None, None)
    assert not ledger.complete_work(item.id)  # already closed


def test_fail_then_retry_later_then_dead(ledger):
    item = enqueue(ledger)
    lease_one(ledger)
    retry_at = T0 + timedelta(minutes=2)
    assert ledger.fail_work(item.id, "transient", "503", "Stripe unavailable", retry_at, False)
    failed = ledger.get_work(item.id)
    assert (failed.status, failed.next_attempt_at, failed.attempts) == ("pending", retry_at, 1)
    assert (failed.last_error_class, failed.last_error_code, failed.last_error_message) == (
        "transient",
        "503",
        "Stripe unavailable",
    )
    assert ledger.lease_due_work(T0 + timedelta(minutes=1), 1, "w1", LEASE) == []
    lease_one(ledger, now=retry_at)
    assert ledger.fail_work(item.id, "invalid_data", "6240", "Duplicate name", retry_at, True)
    assert ledger.get_work(item.id).status == "dead"
    assert ledger.lease_due_work(T0 + timedelta(days=1), 1, "w1", LEASE) == []


def test_reenqueue_resets_a_closed_row(ledger):
    item = enqueue(ledger)
    lease_one(ledger)
    ledger.fail_work(item.id, "transient", None, "timeout", T0, False)
    again = ledger.enqueue("create_invoice", "006A", {"deal": "006A", "v": 2}, T0 + LEASE)
    assert again.id == item.id  # one key, one row, one history
    assert (again.status, again.attempts, again.last_error_class) == ("pending", 0, None)
    assert again.payload == {"deal": "006A", "v": 2}


def test_reenqueue_leaves_an_unchanged_dead_item_dead(ledger):
    item = enqueue(ledger, revision="r1", mapping_hash="m1")
    lease_one(ledger)
    ledger.fail_work(item.id, INVALID_DATA, "610", "inactive item", T0, True)
    same = enqueue(ledger, revision="r1", mapping_hash="m1")
    assert (same.status, same.last_error_code) == ("dead", "610")
    changed = enqueue(ledger, revision="r2", mapping_hash="m1")  # the deal changed
    assert (changed.status, changed.attempts, changed.revision) == ("pending", 0, "r2")


def test_reenqueue_while_leased_is_not_lost(ledger):
    item = enqueue(ledger)
    lease_one(ledger)
    later = T0 + timedelta(minutes=1)
    again = ledger.enqueue("create_invoice", "006A", {"deal": "006A", "v": 2}, later)
    assert (again.status, again.leased_by, again.requeued) == ("leased", "w1", True)
    assert ledger.complete_work(item.id, holder="w1")
    after = ledger.get_work(item.id)
    assert (after.status, after.attempts, after.requeued) == ("pending", 0, False)
    assert after.payload == {"deal": "006A", "v": 2} and after.next_attempt_at == later


def test_fail_of_a_requeued_item_keeps_the_new_schedule(ledger):
    item = enqueue(ledger)
    lease_one(ledger)
    ledger.enqueue("create_invoice", "006A", {"v": 2}, T0)
    assert ledger.fail_work(item.id, "transient", None, "x", T0 + timedelta(days=1), True)
    after = ledger.get_work(item.id)
    assert (after.status, after.next_attempt_at, after.last_error_class) == (
        "pending",
        T0,
        "transient",
    )


def test_retry_work_is_audited(ledger, clock):
    item = enqueue(ledger)
    lease_one(ledger)
    ledger.fail_work(item.id, "auth", "401", "token revoked", T0, True)
    clock.advance(timedelta(hours=2))
    assert ledger.retry_work(item.id, "ops@example.com", note="reconnected QBO")
    retried = ledger.get_work(item.id)
    assert (retried.status, retried.attempts, retried.next_attempt_at) == ("pending", 0, clock.now)
    failed, entry = ledger.audit_for(f"work_item:{item.id}")
    assert (failed.action, failed.actor) == ("work.failed", "engine")
    assert failed.details == {
        "attempts": 1,
        "error_class": "auth",
        "code": "401",
        "message": "token revoked",
        "dead": True,
    }
    assert (entry.actor, entry.action, entry.at) == ("ops@example.com", "work.retry", clock.now)
    assert entry.details["previous_status"] == "dead"
    assert entry.details["last_error_code"] == "401"
    assert entry.details["note"] == "reconnected QBO"


def test_resolve_work_is_audited(ledger):
    item = enqueue(ledger)
    assert ledger.resolve_work(item.id, "ops", "invoiced by hand as INV-9")
    assert ledger.get_work(item.id).status == "resolved"
    (entry,) = ledger.audit_for(f"work_item:{item.id}")
    assert (entry.action, entry.details["note"]) == ("work.resolve", "invoiced by hand as INV-9")
    assert ledger.lease_due_work(T0 + timedelta(days=1), 5, "w1", LEASE) == []


def test_operator_actions_refused_on_leased_and_unknown_items(ledger):
    item = enqueue(ledger)
    lease_one(ledger)
    assert not ledger.retry_work(item.id, "ops")
    assert not ledger.resolve_work(item.id, "ops", "no")
    assert not ledger.retry_work(999_999, "ops")
    assert ledger.audit_for(f"work_item:{item.id}") == []


def test_rearm_invalid_data_when_mapping_changes(ledger, clock):
    bad = enqueue(ledger, "bad", mapping_hash="m1")
    other = enqueue(ledger, "other", mapping_hash="m1")
    ledger.lease_due_work(T0, 2, "w1", LEASE)
    ledger.fail_work(bad.id, INVALID_DATA, "610", "inactive item", T0, True)
    ledger.fail_work(other.id, "auth", "401", "revoked", T0, True)
    clock.advance(timedelta(hours=1))
    assert ledger.rearm_invalid_work("m1") == 0
    assert ledger.rearm_invalid_work("m2") == 1
    rearmed = ledger.get_work(bad.id)
    assert (rearmed.status, rearmed.attempts, rearmed.mapping_hash) == ("pending", 0, "m2")
    assert rearmed.next_attempt_at == clock.now
    assert ledger.get_work(other.id).status == "dead"
    assert ledger.rearm_invalid_work("m2") == 0  # stamped: not re-armed twice


def test_list_and_depth(ledger):
    ids = [enqueue(ledger, f"k{i}").id for i in range(5)]
    ledger.enqueue("writeback", "006A", {}, T0)
    lease_one(ledger)
    assert ledger.queue_depth() == {"pending": 5, "leased": 1, "done": 0, "dead": 0, "resolved": 0}
    assert [i.id for i in ledger.list_work(WorkStatus.PENDING, kind="create_invoice")] == ids[1:]
    page1 = ledger.list_work(limit=3)
    page2 = ledger.list_work(limit=3, after_id=page1[-1].id)
    assert [i.id for i in page1 + page2] == [*ids, ids[-1] + 1]
    assert [i.key for i in ledger.list_work("leased")] == ["k0"]


def test_status_check_constraint(ledger):
    enqueue(ledger)
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
        conn.execute(sa.update(work_items).values(status="bogus"))


def test_concurrent_workers_never_share_an_item(ledger):
    for i in range(120):
        enqueue(ledger, f"k{i:03}")

    def work(worker: int) -> list[int]:
        got: list[int] = []
        while batch := ledger.lease_due_work(T0, 5, f"w{worker}", LEASE):
            got.extend(item.id for item in batch)
            for item in batch:
                assert ledger.complete_work(item.id, holder=f"w{worker}")
        return got

    per_worker = run_concurrently(work, 4)
    leased = [i for ids in per_worker for i in ids]
    assert len(leased) == 120 == len(set(leased))
    assert ledger.queue_depth()["done"] == 120


@pytest.fixture
def pg_ledger(postgres_url):
    # lock_timeout: if SKIP LOCKED did not skip, the lease would wait on worker A's
    # locks and fail after 5 s instead of hanging the test.
    url = sa.make_url(postgres_url).update_query_dict({"options": "-c lock_timeout=5000"})
    engine = create_ledger_engine(url)
    upgrade_to_head(engine)
    yield Ledger(engine, clock=FakeClock(T0))
    engine.dispose()


@pytest.mark.postgres
def test_postgres_skips_rows_locked_by_another_worker(pg_ledger):
    # Worker A has selected (and locked) the first three items but not committed;
    # worker B must get the others at once instead of waiting or duplicating.
    for i in range(6):
        enqueue(pg_ledger, f"k{i}")
    with pg_ledger.engine.connect() as conn_a, conn_a.begin():
        locked = (
            conn_a.execute(
                sa.select(work_items.c.id)
                .order_by(work_items.c.id)
                .limit(3)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        items = pg_ledger.lease_due_work(T0, 10, "B", LEASE)
        assert len(items) == 3
        assert {i.id for i in items}.isdisjoint(locked)
