"""Customer links: the ledger's memory of which target customer bills an account."""

from __future__ import annotations

from billsync.sync.ledger import Ledger


def test_link_replace_and_unlink(ledger: Ledger) -> None:
    assert ledger.customer_link("quickbooks", "001A") is None
    ledger.link_customer("quickbooks", "001A", "58", "Acme")
    ledger.link_customer("stripe", "001A", "cus_1")
    assert ledger.customer_link("quickbooks", "001A") == "58"
    assert ledger.customer_link("stripe", "001A") == "cus_1"
    ledger.link_customer("quickbooks", "001A", "59", "Acme (AC-1)")
    assert ledger.customer_link("quickbooks", "001A") == "59"
    assert ledger.unlink_customer("quickbooks", "001A") is True
    assert ledger.unlink_customer("quickbooks", "001A") is False
    assert ledger.customer_link("quickbooks", "001A") is None
    assert ledger.customer_link("stripe", "001A") == "cus_1"
