"""`LedgerCredentialStore`: CAS over the credentials table and the refresher lease, on
SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from billsync.core.protocols import CredentialStore
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.credential_store import LedgerCredentialStore, lease_name
from tests.ledger.conftest import run_concurrently

TTL = timedelta(seconds=60)
NAME = "quickbooks:9341453050298475"


def test_is_a_credential_store(ledger: Ledger) -> None:
    store = LedgerCredentialStore(ledger, "host-a:1")
    assert isinstance(store, CredentialStore)
    assert "host-a:1" in repr(store)


def test_load_and_compare_and_swap(ledger: Ledger) -> None:
    store = LedgerCredentialStore(ledger, "host-a:1")
    assert store.load(NAME) is None
    assert store.save(NAME, {"refresh_token": "rt1"}, None)
    assert not store.save(NAME, {"refresh_token": "other"}, None)  # exists already
    assert store.load(NAME) == ({"refresh_token": "rt1"}, 1)
    assert store.save(NAME, {"refresh_token": "rt2"}, 1)
    assert not store.save(NAME, {"refresh_token": "stale"}, 1)  # someone saved first
    data, version = store.load(NAME) or ({}, 0)
    assert (data, version) == ({"refresh_token": "rt2"}, 2)


def test_saved_data_is_committed_and_visible_to_another_process(ledger: Ledger) -> None:
    LedgerCredentialStore(ledger, "a").save(NAME, {"refresh_token": "rt1"}, None)
    other = Ledger(ledger.engine)
    assert LedgerCredentialStore(other, "b").load(NAME) == ({"refresh_token": "rt1"}, 1)


def test_hold_is_exclusive_between_processes_and_released_after(ledger: Ledger) -> None:
    first, second = LedgerCredentialStore(ledger, "a"), LedgerCredentialStore(ledger, "b")
    with first.hold(NAME, TTL) as held:
        assert held
        with second.hold(NAME, TTL) as other:
            assert not other
        lease = ledger.get_lease(lease_name(NAME))
        assert lease is not None and lease.holder == "a"
    assert ledger.get_lease(lease_name(NAME)) is None
    with second.hold(NAME, TTL) as held:
        assert held


def test_hold_is_released_when_the_block_raises(ledger: Ledger) -> None:
    store = LedgerCredentialStore(ledger, "a")
    with pytest.raises(RuntimeError), store.hold(NAME, TTL):
        raise RuntimeError("refresh failed")
    assert ledger.get_lease(lease_name(NAME)) is None


def test_an_expired_holder_is_taken_over_and_cannot_free_the_new_lease(ledger, clock) -> None:
    crashed, taker = LedgerCredentialStore(ledger, "crashed"), LedgerCredentialStore(ledger, "b")
    with crashed.hold(NAME, TTL) as held:
        assert held
        clock.advance(TTL * 2)
        with taker.hold(NAME, TTL) as took:
            assert took
        # the crashed holder's late release must not free someone else's lease
    assert ledger.get_lease(lease_name(NAME)) is None  # b released its own on exit


def test_threads_of_one_process_do_not_share_the_lease(ledger: Ledger) -> None:
    store = LedgerCredentialStore(ledger, "one-process")
    inside = threading.Event()
    leave = threading.Event()
    seen: list[bool] = []

    def holder() -> None:
        with store.hold(NAME, TTL) as held:
            seen.append(held)
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert inside.wait(10)
    with store.hold(NAME, TTL) as second:
        assert not second  # same holder string, but another thread: wait and reload
    leave.set()
    thread.join(10)
    assert seen == [True]


def test_names_are_independent(ledger: Ledger) -> None:
    store = LedgerCredentialStore(ledger, "a")
    with store.hold(NAME, TTL) as one, store.hold("quickbooks:other", TTL) as two:
        assert one and two


def test_concurrent_processes_have_one_holder(ledger: Ledger) -> None:
    barrier = threading.Barrier(6)

    def attempt(i: int) -> bool:
        with LedgerCredentialStore(ledger, f"worker-{i}").hold(NAME, TTL) as held:
            barrier.wait(30)  # everyone decides while the winner still holds it
            return held

    assert run_concurrently(attempt, 6).count(True) == 1


def test_concurrent_saves_of_one_version_have_one_winner(ledger: Ledger) -> None:
    LedgerCredentialStore(ledger, "seed").save(NAME, {"refresh_token": "rt1"}, None)
    results = run_concurrently(
        lambda i: LedgerCredentialStore(ledger, f"w{i}").save(
            NAME, {"refresh_token": f"rt-{i}"}, 1
        ),
        6,
    )
    assert results.count(True) == 1
    winner = results.index(True)
    assert LedgerCredentialStore(ledger, "x").load(NAME) == ({"refresh_token": f"rt-{winner}"}, 2)
