"""`billsync failures list|show|retry|resolve` on a ledger with known failures, on
SQLite and PostgreSQL: every JSON field, the filters, the audit trail, the exit codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from billsync.connectors.quickbooks import errors as qbo
from billsync.core.protocols import ConnectorError
from billsync.mappings.rejections import Rejection
from billsync.sync.engine.failures import INVOICE, WRITEBACK, FailureRecorder, RetryPolicy
from billsync.sync.ledger import Ledger, work_subject
from tests.ops.conftest import Cli

FIELDS = {
    "id", "deal_id", "deal_name", "target", "stage", "error_class", "code", "message",
    "status", "attempts", "first_seen", "last_attempt_at", "next_attempt_at",
}  # fmt: skip
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def recorder(ledger: Ledger) -> FailureRecorder:
    policy = RetryPolicy(base_s=60, cap_s=3600, max_attempts=5)
    return FailureRecorder(
        ledger, policy, mapping_hash="m1", run_id="run-1", holder="worker", now=lambda: NOW
    )


def invoice_payload(deal_id: str, target: str, name: str) -> dict[str, Any]:
    draft = {
        "deal_id": deal_id, "target": target, "currency": "USD", "total": "1200.00",
        "customer": {"account_id": "001A", "name": "Acme Analytics"}, "doc_number": deal_id,
        "lines": [{"item_ref": "17", "amount": "1200.00"}], "idempotency_key": f"k-{deal_id}",
    }  # fmt: skip
    return {"deal_id": deal_id, "target": target, "stage": "invoice", "deal_name": name,
            "draft": draft}  # fmt: skip


def seed_failures(ledger: Ledger) -> dict[str, int]:
    """inactive: dead QuickBooks 610; flaky: pending Stripe 5xx; writeback: dead
    Salesforce validation rule; rejected: dead validation; plus routine and done work."""
    rec = recorder(ledger)
    inactive = qbo.fault_error(
        610, "Object Not Found", "Item assigned to this transaction has been deleted. Before "
        "you can modify this transaction, you must restore SKU-9 (deleted).",
    )  # fmt: skip
    rec.failed(INVOICE, "006A", invoice_payload("006A", "quickbooks", "Acme renewal"),
               inactive, "r1")  # fmt: skip
    flaky = ConnectorError(
        system="stripe", error_class="transient", code="api_error",
        message="Stripe invoice create failed: api_error (HTTP 500): boom — Stripe had a "
        "server error; retried",
    )  # fmt: skip
    rec.failed(INVOICE, "006B", invoice_payload("006B", "stripe", "Beta expansion"), flaky, "r1")
    rule = ConnectorError(
        system="salesforce", error_class="invalid_data", code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
        message="Salesforce write-back failed: FIELD_CUSTOM_VALIDATION_EXCEPTION (HTTP 400): "
        "Amount locked — a validation rule rejected the values; exempt the integration user "
        "or fix the data",
    )  # fmt: skip
    rec.failed(WRITEBACK, "006C", {"deal_id": "006C", "target": "quickbooks",
                                   "stage": "writeback"}, rule, None)  # fmt: skip
    problem = Rejection("006D", "Opportunity.Billing_Platform__c", "'Xero' is not a target",
                        "set it to QuickBooks or Stripe")  # fmt: skip
    rec.rejected("006D", None, (problem,), "r1")
    routine = ledger.enqueue(WRITEBACK, "006E", {"deal_id": "006E", "stage": "writeback"}, NOW)
    done = ledger.enqueue(WRITEBACK, "006F", {"deal_id": "006F", "stage": "writeback"}, NOW)
    assert ledger.complete_work(done.id)
    ids = {
        name: item.id
        for name, item in (
            ("inactive", ledger.find_work(INVOICE, "006A")),
            ("flaky", ledger.find_work(INVOICE, "006B")),
            ("writeback", ledger.find_work(WRITEBACK, "006C")),
            ("rejected", ledger.find_work(INVOICE, "006D")),
            ("routine", routine),
            ("done", done),
        )
        if item is not None
    }
    assert len(ids) == 6
    return ids


@pytest.fixture
def failures(ledger: Ledger) -> dict[str, int]:
    return seed_failures(ledger)


@pytest.fixture
def sqlite_failures(sqlite_ledger: Ledger) -> dict[str, int]:
    """The same on SQLite only, for tests of the command's own logic."""
    return seed_failures(sqlite_ledger)


def actions(ledger: Ledger, item_id: int) -> list[Any]:
    """The audit trail of one item without its failed attempts (retry, resolve, …)."""
    return [e for e in ledger.audit_for(work_subject(item_id)) if e.action != "work.failed"]


def ids_of(rows: list[dict[str, Any]]) -> set[int]:
    return {row["id"] for row in rows}


def test_list_json_has_every_field_and_only_failures(cli: Cli, failures: dict[str, int]) -> None:
    rows = cli.json("failures", "list", "--json")
    assert ids_of(rows) == {failures[n] for n in ("inactive", "flaky", "writeback", "rejected")}
    for row in rows:
        assert set(row) >= FIELDS, FIELDS - set(row)
    by_id = {row["id"]: row for row in rows}
    inactive = by_id[failures["inactive"]]
    assert inactive == inactive | {
        "deal_id": "006A", "deal_name": "Acme renewal", "target": "quickbooks",
        "stage": "invoice", "error_class": "invalid_data", "code": "610", "status": "dead",
        "attempts": 1, "first_seen": "2026-03-31T12:00:00+00:00",
        "last_attempt_at": "2026-03-31T12:00:00+00:00", "next_attempt_at": None,
    }  # fmt: skip
    assert "restore SKU-9" in inactive["message"]
    flaky = by_id[failures["flaky"]]
    assert (flaky["status"], flaky["error_class"], flaky["target"]) == (
        "pending", "transient", "stripe")  # fmt: skip
    assert flaky["next_attempt_at"] > "2026-03-31T12:00:00+00:00"
    writeback = by_id[failures["writeback"]]
    assert (writeback["stage"], writeback["system"], writeback["deal_name"]) == (
        "writeback", "salesforce", None)  # fmt: skip
    rejected = by_id[failures["rejected"]]
    assert (rejected["code"], rejected["target"], rejected["stage"]) == (
        "VALIDATION", None, "validate")  # fmt: skip


def test_list_filters(cli: Cli, failures: dict[str, int]) -> None:
    dead = cli.json("failures", "list", "--status", "dead", "--json")
    assert ids_of(dead) == {failures[n] for n in ("inactive", "writeback", "rejected")}
    assert ids_of(cli.json("failures", "list", "--target", "stripe", "--json")) == {
        failures["flaky"]}  # fmt: skip
    assert ids_of(cli.json("failures", "list", "--class", "transient", "--json")) == {
        failures["flaky"]}  # fmt: skip
    assert cli.json("failures", "list", "--since", "2026-04-01", "--json") == []
    assert len(cli.json("failures", "list", "--since", "2026-03-31T11:00:00Z", "--json")) == 4
    assert cli.json("failures", "list", "--status", "resolved", "--json") == []
    bad = cli("failures", "list", "--since", "yesterday")
    assert bad.exit_code == 2 and "not an ISO date" in bad.output
    bad = cli("failures", "list", "--status", "broken")
    assert bad.exit_code == 2 and "choose open, dead, resolved or all" in bad.output


def test_list_as_lines(sqlite_cli: Cli, sqlite_failures: dict[str, int]) -> None:
    failures = sqlite_failures
    result = sqlite_cli("failures", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    line = next(line for line in lines if line.startswith(f"{failures['inactive']} "))
    assert "dead invalid_data/610 deal=006A target=quickbooks stage=invoice" in line


def test_show_everything_about_one(cli: Cli, failures: dict[str, int]) -> None:
    shown = cli.json("failures", "show", str(failures["inactive"]), "--json")
    assert set(shown) >= FIELDS
    assert shown["advice"]["sentence"].startswith(
        "Creating the QuickBooks invoice for deal 006A ('Acme renewal') failed: QuickBooks "
        "item 'SKU-9' is inactive or deleted"
    )
    assert shown["attempted"]["invoice"] == shown["attempted"]["invoice"] | {
        "target": "quickbooks", "customer": "Acme Analytics", "total": "1200.00", "lines": 1,
        "items": ["17"], "idempotency_key": "k-006A",
    }  # fmt: skip
    assert shown["attempt_history"][0]["code"] == "610"
    assert shown["audit"] == []
    text = cli("failures", "show", str(failures["rejected"]))
    assert text.exit_code == 0
    assert "What to do:" in text.stdout and "'Xero' is not a target" in text.stdout


def test_show_an_unknown_id_is_a_usage_error(cli: Cli, failures: dict[str, int]) -> None:
    for item_id in (failures["routine"], failures["done"], 99999):  # not failures, or none
        result = cli("failures", "show", str(item_id))
        assert result.exit_code == 2
        assert f"no failure with id {item_id}; see billsync failures list" in result.stderr


def test_retry_is_audited_and_resets_the_item(
    cli: Cli, ledger: Ledger, failures: dict[str, int]
) -> None:
    item_id = failures["inactive"]
    result = cli("failures", "retry", str(item_id), "--actor", "ops:alice", "--note", "reactivated")
    assert result.exit_code == 0, result.output
    assert f"retried {item_id} (dead → pending)" in result.stdout
    item = ledger.get_work(item_id)
    assert item is not None and (item.status, item.attempts) == ("pending", 0)
    [entry] = actions(ledger, item_id)
    assert (entry.actor, entry.action) == ("ops:alice", "work.retry")
    assert entry.details["note"] == "reactivated" and entry.details["previous_status"] == "dead"
    shown = cli.json("failures", "show", str(item_id), "--json")
    assert [a["action"] for a in shown["audit"]] == ["work.retry"]
    # Still listed as open: it failed and has not succeeded yet.
    assert item_id in ids_of(cli.json("failures", "list", "--json"))


def test_retry_with_an_unknown_id_changes_nothing(
    sqlite_cli: Cli, sqlite_ledger: Ledger, sqlite_failures: dict[str, int]
) -> None:
    result = sqlite_cli("failures", "retry", str(sqlite_failures["inactive"]), "424242")
    assert result.exit_code == 2
    assert "no failure with id 424242" in result.stderr
    item = sqlite_ledger.get_work(sqlite_failures["inactive"])
    assert item is not None and item.status == "dead"
    assert actions(sqlite_ledger, sqlite_failures["inactive"]) == []


def test_retry_a_leased_item_says_why_and_exits_1(
    sqlite_cli: Cli, sqlite_ledger: Ledger, sqlite_failures: dict[str, int]
) -> None:
    leased = sqlite_ledger.lease_due_work(NOW + timedelta(days=1), 10, "runner", timedelta(hours=1),
                                   kinds=(INVOICE,))  # fmt: skip
    assert [item.id for item in leased] == [sqlite_failures["flaky"]]
    result = sqlite_cli(
        "failures", "retry", str(sqlite_failures["flaky"]), str(sqlite_failures["writeback"])
    )
    assert result.exit_code == 1
    assert (
        f"not retried {sqlite_failures['flaky']}: a run is working on it right now" in result.stderr
    )
    assert f"retried {sqlite_failures['writeback']} (dead → pending)" in result.stdout


def test_retry_all_of_a_class(
    sqlite_cli: Cli, sqlite_ledger: Ledger, sqlite_failures: dict[str, int]
) -> None:
    report = sqlite_cli.json("failures", "retry", "--all", "--class", "invalid_data", "--json")
    retried = {item["id"] for item in report["items"] if item["done"]}
    assert retried == {sqlite_failures[n] for n in ("inactive", "writeback", "rejected")}
    assert report["actor"].startswith("cli:")
    assert actions(sqlite_ledger, sqlite_failures["flaky"]) == []  # another class
    assert sqlite_cli("failures", "retry").exit_code == 2  # neither ids nor --all
    assert sqlite_cli("failures", "retry", "--all", str(sqlite_failures["flaky"])).exit_code == 2


def test_resolve_needs_a_note_and_is_audited(
    cli: Cli, ledger: Ledger, failures: dict[str, int]
) -> None:
    item_id = failures["writeback"]
    missing = cli("failures", "resolve", str(item_id))
    assert missing.exit_code == 2 and "--note" in missing.output
    blank = cli("failures", "resolve", str(item_id), "--note", "  ")
    assert blank.exit_code == 2
    done = cli("failures", "resolve", str(item_id), "--note", "fixed the rule by hand",
               "--actor", "ops:bob")  # fmt: skip
    assert done.exit_code == 0, done.output
    [entry] = actions(ledger, item_id)
    assert (entry.actor, entry.action, entry.details["note"]) == (
        "ops:bob", "work.resolve", "fixed the rule by hand")  # fmt: skip
    resolved = cli.json("failures", "list", "--status", "resolved", "--json")
    assert ids_of(resolved) == {item_id}
    assert item_id not in ids_of(cli.json("failures", "list", "--json"))
    again = cli("failures", "resolve", str(item_id), "--note", "twice")
    assert again.exit_code == 1 and "it is already resolved" in again.stderr
    all_rows = cli.json("failures", "list", "--status", "all", "--json")
    assert len(all_rows) == 4
