"""The run lease (exclusive, expiring) and the run log."""

from __future__ import annotations

from datetime import timedelta

import pytest

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
    assert results.count(True) == 1


def test_concurrent_takeover_of_expired_lease_has_one_winner(ledger, clock):
    ledger.acquire_lease("run", "crashed", TTL)
    clock.advance(TTL * 2)
    results = run_concurrently(lambda i: ledger.acquire_lease("run", f"worker-{i}", TTL), 8)
    assert results.count(True) == 1


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
