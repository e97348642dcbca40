"""The ledger remembers what each connection name is, and refuses a re-pointed name."""

from __future__ import annotations

from billsync.sync.ledger import Ledger
from billsync.sync.ledger.connections import ConnectionPin, PinConflict


def test_first_use_records_and_later_uses_agree(ledger: Ledger) -> None:
    pins = {"qbo_us": ConnectionPin("quickbooks", "111"), "stripe_eu": ConnectionPin("stripe")}
    assert ledger.pin_connections(pins) == []
    assert ledger.pin_connections(pins) == []
    assert ledger.pinned_connections() == pins


def test_an_account_is_learned_once_and_then_held(ledger: Ledger) -> None:
    ledger.pin_connections({"stripe_eu": ConnectionPin("stripe")})
    assert ledger.pin_connections({"stripe_eu": ConnectionPin("stripe", "acct_1")}) == []
    # A connector that cannot tell its account this time changes nothing.
    assert ledger.pin_connections({"stripe_eu": ConnectionPin("stripe")}) == []
    assert ledger.pinned_connections()["stripe_eu"] == ConnectionPin("stripe", "acct_1")


def test_another_account_or_kind_under_a_known_name_is_a_conflict_and_changes_nothing(
    ledger: Ledger,
) -> None:
    ledger.pin_connections({"qbo_us": ConnectionPin("quickbooks", "111")})
    moved = {"qbo_us": ConnectionPin("quickbooks", "222")}
    assert ledger.pin_connections(moved) == [
        PinConflict("qbo_us", ConnectionPin("quickbooks", "111"), moved["qbo_us"])
    ]
    retyped = {"qbo_us": ConnectionPin("stripe")}
    assert ledger.pin_connections(retyped)[0].configured == ConnectionPin("stripe")
    assert ledger.pinned_connections()["qbo_us"] == ConnectionPin("quickbooks", "111")
