"""`billsync customers list|link|unlink` on SQLite and PostgreSQL: the links, the audit
trail, the refusals; and the deleted-customer failure's advice names these commands."""

from __future__ import annotations

import json

from billsync.connectors.stripe.actions import _customer_deleted
from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.sync.engine.failures import INVOICE
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.customers import customer_subject
from billsync.sync.ops.failures import show_failure
from tests.ops.conftest import Cli
from tests.ops.test_advice import record


def test_list_shows_every_link_and_filters(ledger: Ledger, cli: Cli) -> None:
    ledger.link_customer("stripe", "001A", "cus_A", "Acme")
    ledger.link_customer("quickbooks", "001A", "58", "Acme")
    ledger.link_customer("stripe", "001B", "cus_B")
    rows = cli.json("customers", "list", "--json")
    assert [(r["target"], r["account_id"], r["customer_id"]) for r in rows] == [
        ("quickbooks", "001A", "58"),
        ("stripe", "001A", "cus_A"),
        ("stripe", "001B", "cus_B"),
    ]
    assert set(rows[0]) == {
        "target", "account_id", "customer_id", "name", "method", "evidence", "updated_at",
    }  # fmt: skip
    assert rows[0]["method"] == "unknown"  # made without saying how
    only = cli.json("customers", "list", "--target", "stripe", "--account", "001B", "--json")
    assert [r["customer_id"] for r in only] == ["cus_B"]
    plain = cli("customers", "list")
    assert "account_id=001B" in plain.stdout and "name=-" in plain.stdout


def test_unlink_forgets_the_link_and_is_audited(ledger: Ledger, cli: Cli) -> None:
    ledger.link_customer("stripe", "001A", "cus_A", "Acme")
    done = cli("customers", "unlink", "stripe", "001A", "--note", "deleted in Stripe",
               "--actor", "ops:ana")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "cus_A" in done.stdout and "billsync failures retry" in done.stdout
    assert ledger.customer_link("stripe", "001A") is None
    [entry] = ledger.audit_for(customer_subject("stripe", "001A"))
    assert (entry.actor, entry.action) == ("ops:ana", "customer.unlinked")
    assert entry.details == {"before": "cus_A", "note": "deleted in Stripe"}
    again = cli("customers", "unlink", "stripe", "001A", "--note", "twice")
    assert again.exit_code == 2
    assert "has no stripe customer link" in again.stderr


def test_link_replaces_and_is_audited(ledger: Ledger, cli: Cli) -> None:
    ledger.link_customer("stripe", "001A", "cus_old", "Acme")
    done = cli("customers", "link", "stripe", "001A", "cus_new", "--note", "merged",
               "--actor", "ops:ana")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "(was cus_old)" in done.stdout
    assert ledger.customer_link("stripe", "001A") == "cus_new"
    [entry] = ledger.audit_for(customer_subject("stripe", "001A"))
    assert entry.action == "customer.linked"
    assert entry.details == {"before": "cus_old", "after": "cus_new", "note": "merged"}


def test_a_connection_the_ledger_served_accepts_links(ledger: Ledger, cli: Cli) -> None:
    """Links are per connection: one recorded in the ledger (``qbo_uk``) is accepted
    even when this configuration no longer declares it."""
    from billsync.sync.ledger.connections import ConnectionPin

    ledger.pin_connections({"qbo_uk": ConnectionPin("quickbooks", "222")})
    done = cli("customers", "link", "qbo_uk", "001A", "77", "--note", "UK entity")
    assert done.exit_code == 0, done.output
    assert ledger.customer_link("qbo_uk", "001A") == "77"
    assert ledger.customer_link("quickbooks", "001A") is None


def test_the_engine_links_without_audit_rows(sqlite_ledger: Ledger) -> None:
    sqlite_ledger.link_customer("stripe", "001A", "cus_A")
    assert sqlite_ledger.unlink_customer("stripe", "001A") is True
    assert sqlite_ledger.audit_for(customer_subject("stripe", "001A")) == []


def test_refusals_change_nothing(sqlite_ledger: Ledger, sqlite_cli: Cli) -> None:
    sqlite_ledger.link_customer("stripe", "001A", "cus_A")
    cases = [
        (("customers", "unlink", "xero", "001A", "--note", "n"), "unknown target 'xero'"),
        (("customers", "unlink", "stripe", "001A"), "--note must say why"),
        (("customers", "link", "stripe", "001A", "cus_B", "--note", "  "), "--note must say why"),
        (("customers", "list", "--target", "xero"), "unknown target 'xero'"),
    ]
    for args, reason in cases:
        result = sqlite_cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert reason in result.stderr
    assert sqlite_ledger.customer_link("stripe", "001A") == "cus_A"
    assert sqlite_ledger.audit_for(customer_subject("stripe", "001A")) == []


def test_a_deleted_stripe_customer_failure_names_the_commands(sqlite_ledger: Ledger) -> None:
    error = ConnectorError(
        system="stripe", error_class=ErrorClass.NOT_FOUND, code="customer_deleted",
        field="customer", message=_customer_deleted("cus_gone", "001A"),
    )  # fmt: skip
    item_id, _deal = record(sqlite_ledger, 7, "stripe", error)
    advice = show_failure(sqlite_ledger, item_id).advice
    assert "Stripe customer cus_gone of account 001A was deleted in Stripe" in advice.sentence
    assert "billsync customers unlink stripe 001A" in advice.fix
    assert f"billsync failures retry {item_id}" in advice.sentence
    assert not advice.retries_by_itself
    assert sqlite_ledger.find_work(INVOICE, _deal) is not None


def test_list_shows_how_each_link_was_made(ledger: Ledger, cli: Cli) -> None:
    ledger.link_customer("quickbooks", "001A", "58", "Globex", method="created")
    evidence = {"name": "Initech", "email": "ap@initech.example"}
    ledger.link_customer("quickbooks", "001B", "59", "Initech", method="matched", evidence=evidence)
    rows = cli.json("customers", "list", "--json")
    assert [(r["method"], r["evidence"]) for r in rows] == [
        ("created", None),
        ("matched", evidence),
    ]
    plain = cli("customers", "list").stdout
    assert "method=matched evidence=email:ap@initech.example,name:Initech" in plain


def test_link_is_operator_made_and_says_when_the_customer_is_shared(
    ledger: Ledger, cli: Cli
) -> None:
    ledger.link_customer("quickbooks", "001A", "58", "Globex", method="created")
    done = cli("customers", "link", "quickbooks", "001B", "58", "--note", "same company",
               "--actor", "ops:ana")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "now linked to 2 accounts (001B, 001A)" in done.stdout
    [link] = ledger.customer_links("quickbooks", "001B")
    assert link.method == "operator"
    assert link.evidence == {"note": "same company", "actor": "ops:ana"}
    assert ledger.shared_customers() == [("quickbooks", "58", ["001A", "001B"])]


def test_status_warns_about_a_customer_linked_to_two_accounts(
    sqlite_ledger: Ledger, sqlite_cli: Cli
) -> None:
    sqlite_ledger.link_customer("quickbooks", "001A", "58", "Globex", method="created")
    sqlite_ledger.link_customer("quickbooks", "001C", "60", "Other", method="created")
    assert json.loads(sqlite_cli("status", "--json").stdout)["warnings"] == []
    sqlite_ledger.link_customer("quickbooks", "001B", "58", actor="ops:ana", note="same company")
    result = sqlite_cli("status", "--json")
    assert result.exit_code == 1
    status = json.loads(result.stdout)
    assert status["customers"]["shared"] == [
        {"target": "quickbooks", "customer_id": "58", "accounts": ["001A", "001B"]}
    ]
    assert any(
        "quickbooks customer 58 is linked to 2 accounts (001A, 001B)" in w
        for w in status["warnings"]
    )
