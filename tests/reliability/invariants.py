"""The exactly-once invariants, checked against what the vendors hold (the sandbox's
state) and what billsync recorded (the ledger), after whatever happened to the runs.

Each check returns sentences, one per violation, naming the deal and what is wrong;
an empty list means the invariant holds. The suites feed them to the tally and assert
the list is empty.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from billsync.sandbox.profiles import SINGLE, Profile
from tests.e2e.companies import expected_outcome, invoices_by_deal, stripe_accounts
from tests.reliability.world import ledger_rows

Expected = dict[str, tuple[str | None, Decimal | None]]
OPEN_WORK = ("pending", "leased")
UNFINISHED_DEAL_STATES = ("invoicing", "failed")


def expectations(deals: list[dict[str, Any]], profile: Profile = SINGLE) -> Expected:
    """What billsync must produce for each closed-won seed deal: (target connection,
    total), or (None, None) for a deal it must reject."""
    return {deal["Id"]: expected_outcome(deal, profile) for deal in deals}


def in_sandbox(state: dict[str, Any], expected: Expected, profile: Profile = SINGLE) -> list[str]:
    """Exactly one live invoice per valid deal, in its target (its company), with its
    total; none for a rejected deal; no Stripe draft of billsync's left behind."""
    found = invoices_by_deal(state, profile)
    problems: list[str] = []
    for deal_id, (target, total) in expected.items():
        invoices = found.get(deal_id, [])
        if target is None:
            if invoices:
                problems.append(f"deal {deal_id} must be rejected but has invoices {invoices}")
            continue
        if len(invoices) != 1:
            what = "no invoice" if not invoices else f"{len(invoices)} invoices {invoices}"
            problems.append(f"deal {deal_id}: {what} in the targets, expected one in {target}")
            continue
        got_target, external_id, got_total = invoices[0]
        if (got_target, got_total) != (target, total):
            problems.append(
                f"deal {deal_id}: invoice {external_id} is {got_target} {got_total}, "
                f"expected {target} {total}"
            )
    drafts = [
        i["id"]
        for books in stripe_accounts(state, profile).values()
        for i in books.get("invoices", [])
        if i["status"] == "draft" and (i.get("metadata") or {}).get("billsync_deal_id")
    ]
    if drafts:
        problems.append(f"Stripe drafts left behind: {drafts}")
    return problems


def written_back(state: dict[str, Any], expected: Expected, profile: Profile = SINGLE) -> list[str]:
    """Every deal shows its outcome in Salesforce: the invoice id, or the error."""
    found = invoices_by_deal(state, profile)
    opportunities = {o["Id"]: o for o in state["salesforce"]["Opportunity"]}
    problems: list[str] = []
    for deal_id, (target, _) in expected.items():
        fields = opportunities[deal_id]
        if target is None:
            if fields.get("Billing_Status__c") != "Error" or not fields.get(
                "Billing_Sync_Error__c"
            ):
                problems.append(f"deal {deal_id}: rejected but Salesforce shows no error")
            continue
        invoices = found.get(deal_id) or [("", "", None)]
        if fields.get("Billing_Invoice_Id__c") != invoices[0][1]:
            problems.append(
                f"deal {deal_id}: write-back missing or wrong "
                f"(Billing_Invoice_Id__c={fields.get('Billing_Invoice_Id__c')!r}, "
                f"invoice {invoices[0][1]!r})"
            )
        elif fields.get("Billing_Status__c") in (None, "Error"):
            problems.append(f"deal {deal_id}: status {fields.get('Billing_Status__c')!r}")
    return problems


def in_ledger(
    ledger_url: str, state: dict[str, Any], expected: Expected, profile: Profile = SINGLE
) -> list[str]:
    """The ledger agrees with the targets: one finished deal row per valid deal naming
    the invoice that exists, an invoice row per live invoice with its total, no intent
    left open (an orphan), no work still queued for a finished deal."""
    found = invoices_by_deal(state, profile)
    live = {(t, i): total for invoices in found.values() for (t, i, total) in invoices}
    deal_rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in ledger_rows(ledger_url, "deals"):
        deal_rows[row["deal_id"]].append(row)
    invoice_rows = {(r["target"], r["external_id"]): r for r in ledger_rows(ledger_url, "invoices")}
    work = ledger_rows(ledger_url, "work_items")
    problems: list[str] = []
    for row in (r for rows in deal_rows.values() for r in rows):
        if row["state"] in UNFINISHED_DEAL_STATES:
            problems.append(
                f"deal {row['deal_id']}/{row['target']}: intent row left {row['state']!r}"
            )
    for deal_id, (target, _) in expected.items():
        if target is None:
            continue
        rows = [r for r in deal_rows.get(deal_id, []) if r["target"] == target]
        invoice = (found.get(deal_id) or [("", "", None)])[0]
        if len(rows) != 1 or rows[0]["external_invoice_id"] != invoice[1]:
            shown = [(r["state"], r["external_invoice_id"]) for r in rows]
            problems.append(f"deal {deal_id}: ledger rows {shown} do not name {invoice[1]!r}")
    for key, row in invoice_rows.items():
        if key not in live:
            problems.append(f"ledger invoice {key} (deal {row['deal_id']}) is not live in {key[0]}")
        elif Decimal(str(row["total"])) != live[key]:
            problems.append(f"ledger invoice {key}: total {row['total']} != target {live[key]}")
    for key in live:
        if key not in invoice_rows:
            problems.append(f"invoice {key} exists in the target but not in the ledger")
    valid = {d for d, (t, _) in expected.items() if t is not None}
    for item in work:
        if item["status"] in OPEN_WORK and (item["key"] in valid or item["kind"] == "writeback"):
            problems.append(
                f"work item {item['kind']}:{item['key']} still {item['status']} "
                f"({item['last_error_class']}: {item['last_error_message']})"
            )
        if item["attempts"] > 8:
            problems.append(f"work item {item['kind']}:{item['key']}: {item['attempts']} attempts")
    return problems


def everything(
    ledger_url: str, state: dict[str, Any], expected: Expected, profile: Profile = SINGLE
) -> list[str]:
    return (
        in_sandbox(state, expected, profile)
        + written_back(state, expected, profile)
        + in_ledger(ledger_url, state, expected, profile)
    )
