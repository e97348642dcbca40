"""Cursors, compare-and-swap credentials, and the append-only audit trail."""

from __future__ import annotations

from datetime import timedelta

from billsync.sync.ledger import Ledger
from tests.ledger.conftest import T0, run_concurrently


def test_cursor_round_trip(ledger):
    assert ledger.get_cursor("salesforce.opportunities") is None
    ledger.set_cursor("salesforce.opportunities", "2025-03-01T10:00:00.000+0000")
    ledger.set_cursor("salesforce.opportunities", "2025-03-01T11:00:00.000+0000")
    ledger.set_cursor("stripe.events", "evt_123")
    assert ledger.get_cursor("salesforce.opportunities") == "2025-03-01T11:00:00.000+0000"
    assert ledger.get_cursor("stripe.events") == "evt_123"


def test_credentials_compare_and_swap(ledger):
    assert ledger.load_credentials("quickbooks") is None
    assert ledger.save_credentials("quickbooks", {"refresh_token": "rt1"}, None)
    assert not ledger.save_credentials("quickbooks", {"refresh_token": "other"}, None)
    data, version = ledger.load_credentials("quickbooks")
    assert (data, version) == ({"refresh_token": "rt1"}, 1)

    assert ledger.save_credentials("quickbooks", {"refresh_token": "rt2"}, 1)
    # A second refresher that loaded version 1 must not overwrite the rotated token.
    assert not ledger.save_credentials("quickbooks", {"refresh_token": "stale"}, 1)
    assert ledger.load_credentials("quickbooks") == ({"refresh_token": "rt2"}, 2)


def test_credentials_saved_are_visible_to_another_ledger(ledger):
    ledger.save_credentials("stripe", {"api_key_ref": "env:STRIPE"}, None)
    other = Ledger(ledger.engine)  # e.g. another process: nothing is cached
    assert other.load_credentials("stripe") == ({"api_key_ref": "env:STRIPE"}, 1)


def test_concurrent_refreshers_one_wins(ledger):
    ledger.save_credentials("quickbooks", {"refresh_token": "rt1"}, None)
    results = run_concurrently(
        lambda i: ledger.save_credentials("quickbooks", {"refresh_token": f"rt-{i}"}, 1), 6
    )
    assert results.count(True) == 1
    winner = results.index(True)
    assert ledger.load_credentials("quickbooks") == ({"refresh_token": f"rt-{winner}"}, 2)


def test_audit_append_and_read(ledger, clock):
    first = ledger.append_audit("billsync", "invoice.create", "deal:006A", {"invoice": "in_1"})
    clock.advance(timedelta(seconds=1))
    second = ledger.append_audit("ops", "writeback", "deal:006A")
    ledger.append_audit("ops", "writeback", "deal:006B")
    entries = ledger.audit_for("deal:006A")
    assert [e.id for e in entries] == [first, second]
    assert (entries[0].at, entries[0].actor, entries[0].details) == (
        T0,
        "billsync",
        {"invoice": "in_1"},
    )
    assert entries[1].details == {}
    assert [e.subject for e in ledger.recent_audit(2)] == ["deal:006B", "deal:006A"]


def test_audit_has_no_update_or_delete():
    names = [n for n in dir(Ledger) if "audit" in n]
    assert not [n for n in names if any(w in n for w in ("update", "delete", "remove", "edit"))]
