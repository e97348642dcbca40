"""The run lease (exclusive, expiring) and the run log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billsync.sync.ledger import LeaseLost
from tests.ledger.conftest import T0, run_concurrently

TTL = timedelta(minutes=10)


def test_lease_is_exclusive_until_it_expires(ledger, clock):
    assert ledger.acquire_lease("run", "a", TTL)
    assert not ledger.acquire_lease("run", "b", TTL)
    clock.advance(TTL - timedelta(seconds=1))
    assert not ledger.acquire_lease("run", "b", TTL)
    clock.advance(timedelta(seconds=1))
    assert ledger.acquire_lease("run", "b", TTL)
    lease = ledger.get_lease("run")
    assert lease is not None
    assert (lease.holder, lease.acquired_at, lease.expires_at) == ("b", clock.now, clock.now + TTL)


def test_reacquiring_own_lease_extends_it_and_keeps_start(ledger, clock):
    assert ledger.acquire_lease("run", "a", TTL)
    clock.advance(timedelta(minutes=5))
    assert ledger.acquire_lease("run", "a", TTL)
    lease = ledger.get_lease("run")
    assert lease is not None
    assert lease.acquired_at == T0
    assert lease.expires_at == clock.now + TTL


def test_renew_only_by_holder(ledger, clock):
    assert ledger.acquire_lease("run", "a", TTL)
    assert not ledger.renew_lease("run", "b", TTL)
    clock.advance(timedelta(minutes=9))
    assert ledger.renew_lease("run", "a", TTL)
    clock.advance(timedelta(minutes=9))
    assert not ledger.acquire_lease("run", "b", TTL)  # the renewal kept it alive


def test_renew_fails_after_takeover(ledger, clock):
    ledger.acquire_lease("run", "a", TTL)
    clock.advance(TTL)
    assert ledger.acquire_lease("run", "b", TTL)
    assert not ledger.renew_lease("run", "a", TTL)


def test_release_only_by_holder(ledger):
    ledger.acquire_lease("run", "a", TTL)
    assert not ledger.release_lease("run", "b")
    assert ledger.get_lease("run") is not None
    assert ledger.release_lease("run", "a")
    assert ledger.get_lease("run") is None
    assert ledger.acquire_lease("run", "b", TTL)


def test_leases_are_independent_by_name(ledger):
    assert ledger.acquire_lease("run", "a", TTL)
    assert ledger.acquire_lease("refresh:quickbooks", "b", TTL)


def test_ttl_must_be_positive(ledger):
    with pytest.raises(ValueError):
        ledger.acquire_lease("run", "a", timedelta(0))


def test_concurrent_acquire_has_one_winner(ledger):
    results = run_concurrently(lambda i: ledger.acquire_lease("run", f"worker-{i}", TTL), 8)
    assert [token for token in results if token is not None] == [1]


def test_concurrent_takeover_of_expired_lease_has_one_winner(ledger, clock):
    ledger.acquire_lease("run", "crashed", TTL)
    clock.advance(TTL * 2)
    results = run_concurrently(lambda i: ledger.acquire_lease("run", f"worker-{i}", TTL), 8)
    assert [token for token in results if token is not None] == [2]


# --- fencing (issue 16): the token rises on every acquisition; fenced writes check it


def test_token_rises_on_every_acquisition_and_survives_release(ledger, clock):
    assert ledger.acquire_lease("run", "a", TTL) == 1
    assert ledger.acquire_lease("run", "a", TTL) == 1  # re-acquiring our own: same claim
    clock.advance(TTL)
    assert ledger.acquire_lease("run", "b", TTL) == 2  # takeover after expiry
    assert ledger.release_lease("run", "b")
    assert ledger.get_lease("run") is None
    assert not ledger.release_lease("run", "b")  # released once
    assert ledger.acquire_lease("run", "c", TTL) == 3  # the count goes on after a release
    lease = ledger.get_lease("run")
    assert lease is not None and (lease.holder, lease.token) == ("c", 3)


def test_fenced_writes_refused_after_takeover(ledger, clock):
    a = ledger.acquire_fence("run", "a", TTL)
    assert a is not None and a.token == 1
    ledger.record_intent("006A", "quickbooks", "r1", "k-A", fence=a)
    ledger.check_fence(a)
    clock.advance(TTL)
    b = ledger.acquire_fence("run", "b", TTL)
    assert b is not None and b.token == 2
    with pytest.raises(LeaseLost):
        ledger.record_intent("006B", "quickbooks", "r1", "k-B", fence=a)
    assert a.lost.is_set()
    with pytest.raises(LeaseLost), ledger.fenced(a):
        ledger.set_deal_state("006A", "quickbooks", "invoiced", external_invoice_id="INV1")
    record = ledger.get_deal("006A", "quickbooks")
    assert record is not None and record.state == "invoicing"  # rolled back, whole
    assert ledger.get_deal("006B", "quickbooks") is None
    assert not ledger.renew_lease("run", "a", TTL, fence=a)
    with ledger.fenced(b):  # the current holder writes
        ledger.set_deal_state("006A", "quickbooks", "invoiced", external_invoice_id="INV1")
    with pytest.raises(LeaseLost):
        a.check()


def test_fence_is_the_claim_not_the_holder_name(ledger, clock):
    """A holder that lost the lease and took it again holds a new claim: writes made
    under the old one (a stale thread of the same process) are refused."""
    old = ledger.acquire_fence("run", "a", TTL)
    clock.advance(TTL)
    assert ledger.acquire_lease("run", "b", TTL) == 2
    assert ledger.release_lease("run", "b")
    new = ledger.acquire_fence("run", "a", TTL)
    assert old is not None and new is not None and new.token == 3
    with pytest.raises(LeaseLost):
        ledger.check_fence(old)
    ledger.check_fence(new)


def test_intent_records_the_reference_sent(ledger):
    record = ledger.record_intent("006A", "quickbooks", "r1", "k-A", reference="SF-006A")
    assert record.reference == "SF-006A"
    stored = ledger.get_deal("006A", "quickbooks")
    assert stored is not None and stored.reference == "SF-006A"


def test_runs_are_logged_newest_first(ledger, clock):
    first = ledger.start_run(T0)
    second = ledger.start_run(T0 + timedelta(hours=1))
    clock.advance(timedelta(hours=1, minutes=2))
    summary = {"created": 3, "failed": 1, "deals": ["006A", "006B"]}
    assert ledger.finish_run(second, "partial", summary)
    assert not ledger.finish_run("no-such-run", "clean", {})
    runs = ledger.recent_runs(10)
    assert [r.id for r in runs] == [second, first]
    assert runs[0].outcome == "partial"
    assert runs[0].summary == summary
    assert runs[0].finished_at == clock.now
    assert runs[1].outcome is None and runs[1].finished_at is None
    assert len(ledger.recent_runs(1)) == 1
