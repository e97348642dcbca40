"""Bad data: the corpus (tests/reliability/corpus.py) in one sandbox, one run.

Each bad deal fails alone, as a needs-attention failure whose message names the deal,
the field and the fix, shown on the deal in Salesforce; each odd but fine deal (three-
and zero-decimal currencies, names with apostrophes, colons, quotes, unicode, emoji or
600 characters, a customer named like a QuickBooks Vendor) is invoiced exactly once
with the right total; the ordinary deals of the same run are unaffected. Then money
happens out of band — a Stripe customer deleted, an invoice voided, a payment voided
after it was applied, an overpayment, a refund larger than the payment — and the next
runs take each in without disturbing anything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from billsync.connectors.salesforce.convert import RecordProblem
from billsync.mappings.plan import Rejected
from billsync.sandbox import jsonutil
from billsync.sandbox.launcher import SandboxHandle, running_sandbox
from tests.e2e.test_run_e2e import invoices_by_deal
from tests.reliability import chaos, corpus, invariants
from tests.reliability.corpus import Case, Corpus
from tests.reliability.fuzz_support import planner, record_to_outcome, sf_record
from tests.reliability.summary import Tally
from tests.reliability.world import (
    RunResult,
    billsync,
    billsync_env,
    ledger_rows,
    run,
    sqlite_url,
    write_seed,
)

SUITE = "bad data"


@dataclass
class Outcome:
    corpus: Corpus
    ledger_url: str
    runs: list[RunResult]
    first_state: dict[str, Any]
    state: dict[str, Any]
    handle: SandboxHandle
    workdir: Path
    notes: dict[str, Any] = field(default_factory=dict)

    def work(self, kind: str, key: str) -> dict[str, Any] | None:
        rows = [r for r in ledger_rows(self.ledger_url, "work_items") if r["kind"] == kind]
        return next((r for r in rows if r["key"] == key), None)

    def invoice(self, deal_id: str) -> dict[str, Any] | None:
        rows = [r for r in ledger_rows(self.ledger_url, "invoices") if r["deal_id"] == deal_id]
        return rows[0] if len(rows) == 1 else None

    def opportunity(self, deal_id: str) -> dict[str, Any]:
        return next(o for o in self.state["salesforce"]["Opportunity"] if o["Id"] == deal_id)


def _admin(handle: SandboxHandle, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """An out-of-band action; returns (status, body) — a refusal is an answer too."""
    response = requests.post(
        f"{handle.admin_url}/_sandbox/{path}",
        data=jsonutil.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    return response.status_code, jsonutil.loads(response.text)


def _money_happens(handle: SandboxHandle, c: Corpus, ledger_url: str) -> dict[str, Any]:
    """After the first run: the customer side and the back office act out of band."""
    notes: dict[str, Any] = {}
    invoices = {r["deal_id"]: r for r in ledger_rows(ledger_url, "invoices")}
    links = {(r["target"], r["account_id"]): r for r in ledger_rows(ledger_url, "customer_links")}

    def invoice_of(case: str) -> dict[str, Any]:
        return invoices[c.by_name(case).deal_id]

    deleted = c.by_name("stripe customer deleted")
    account = next(
        d["AccountId"] for d in c.seed["salesforce"]["Opportunity"] if d["Id"] == deleted.deal_id
    )
    customer = links[("stripe", account)]["external_id"]
    notes["delete customer"] = _admin(handle, f"stripe/customers/{customer}/delete", {})
    notes["deleted account"] = account
    notes["deleted customer"] = customer
    notes["void invoice"] = _admin(
        handle, f"stripe/invoices/{invoice_of('stripe invoice voided')['external_id']}/void", {}
    )
    refund_invoice = invoice_of("refund over payment")["external_id"]
    notes["partial payment"] = _admin(
        handle, f"stripe/invoices/{refund_invoice}/pay", {"amount": 20000}
    )
    notes["refund over payment"] = _admin(
        handle, f"stripe/invoices/{refund_invoice}/refund", {"amount": 30000}
    )
    paid = invoice_of("quickbooks payment voided")
    notes["payment to void"] = _admin(
        handle, "quickbooks/payments", {"invoice_id": paid["external_id"], "amount": "864.00"}
    )
    over = invoice_of("quickbooks overpayment")
    notes["overpayment"] = _admin(
        handle, "quickbooks/payments", {"invoice_id": over["external_id"], "amount": "1000.00"}
    )
    return notes


def _later(handle: SandboxHandle, c: Corpus, notes: dict[str, Any]) -> None:
    """After the second run: the applied payment is voided; the account whose Stripe
    customer was deleted buys again."""
    status, body = notes["payment to void"]
    assert status == 200, body
    payment_id = body["Payment"]["Id"]
    notes["void payment"] = _admin(handle, f"quickbooks/payments/{payment_id}/void", {})
    new_deal = {
        "Id": "006R99999999999AAA",
        "Name": "Corpus — buys again after the customer was deleted",
        "AccountId": notes["deleted account"],
        "StageName": "Closed Won",
        "CloseDate": "2026-11-20",
        "CurrencyIsoCode": "USD",
        "Billing_Platform__c": "Stripe",
        "OpportunityLineItems": [
            {"Product2Id": c.seed["salesforce"]["Product2"][1]["Id"], "ProductCode": "SEAT",
             "Quantity": Decimal(1), "UnitPrice": Decimal("480.00")}
        ],
    }  # fmt: skip
    notes["new deal"] = _admin(handle, "salesforce/Opportunity", new_deal)
    notes["new deal id"] = new_deal["Id"]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    workdir = tmp_path_factory.mktemp("bad-data")
    size = chaos.size()
    c = corpus.build(40 if not size.full else 200, chaos.rng_for(SUITE).randrange(10**6))
    ledger_url = sqlite_url(workdir / "billsync.db")
    env = billsync_env(ledger_url)
    with running_sandbox(workdir / "sb", seed_file=write_seed(workdir / "seed.json", c.seed)) as h:
        runs = [run(h.config_path, env, workdir)]
        first_state = h.state()
        notes = _money_happens(h, c, ledger_url)
        runs.append(run(h.config_path, env, workdir))
        _later(h, c, notes)
        runs.append(run(h.config_path, env, workdir))
        yield Outcome(c, ledger_url, runs, first_state, h.state(), h, workdir, notes)


def _rejected() -> list[Case]:
    return [case for case in corpus.build(1, 1).cases if case.target is None]


def _handled() -> list[Case]:
    return [case for case in corpus.build(1, 1).cases if case.target is not None]


def test_the_runs_exit_honestly(outcome: Outcome, tally: Tally) -> None:
    tally.tried(SUITE, len(outcome.runs))
    problems = [
        f"run {n}: exit {r.code}, {r.stderr[-500:]}"
        for n, r in enumerate(outcome.runs, start=1)
        if r.code != 1 or r.summary is None or "Traceback" in r.stderr
    ]
    assert tally.violated(SUITE, problems) == []


@pytest.mark.parametrize("case", _rejected(), ids=lambda c: c.name)
def test_a_bad_deal_fails_alone_with_a_clear_message(
    outcome: Outcome, case: Case, tally: Tally
) -> None:
    tally.tried(SUITE)
    deal = outcome.corpus.by_name(case.name).deal_id
    item = outcome.work("invoice", deal)
    message = (item or {}).get("last_error_message") or ""
    problems = []
    if item is None or item["status"] != "dead":
        problems.append(f"no needs-attention failure: {item and item['status']}")
    for needed in (deal, case.field, case.reason, " — "):
        if needed not in message:
            problems.append(f"the message does not say {needed!r}: {message!r}")
    if deal in invoices_by_deal(outcome.first_state):
        problems.append("it was invoiced anyway")
    shown = outcome.opportunity(deal)
    if shown.get("Billing_Status__c") != "Error" or not shown.get("Billing_Sync_Error__c"):
        problems.append(f"Salesforce does not show the error: {shown.get('Billing_Status__c')}")
    assert tally.violated(SUITE, [f"{case.name}: {p}" for p in problems]) == []


def _customer_name(state: dict[str, Any], target: str, invoice_id: str) -> str | None:
    if target == "quickbooks":
        invoice = next(i for i in state["quickbooks"]["Invoice"] if i["Id"] == invoice_id)
        ref = invoice["CustomerRef"]["value"]
        customer = next(c for c in state["quickbooks"]["Customer"] if c["Id"] == ref)
        return str(customer["DisplayName"])
    invoice = next(i for i in state["stripe"]["invoices"] if i["id"] == invoice_id)
    customer = next(c for c in state["stripe"]["customers"] if c["id"] == invoice["customer"])
    return customer.get("name")


@pytest.mark.parametrize("case", _handled(), ids=lambda c: c.name)
def test_an_odd_but_fine_deal_is_invoiced_exactly_once(
    outcome: Outcome, case: Case, tally: Tally
) -> None:
    tally.tried(SUITE)
    deal = outcome.corpus.by_name(case.name).deal_id
    found = invoices_by_deal(outcome.first_state).get(deal, [])
    problems = []
    if len(found) != 1:
        problems.append(f"{len(found)} invoices: {found}")
    elif (found[0][0], found[0][2]) != (case.target, case.total):
        problems.append(
            f"invoiced {found[0][0]} {found[0][2]}, expected {case.target} {case.total}"
        )
    else:
        name = _customer_name(outcome.first_state, found[0][0], found[0][1])
        if case.customer_name is not None and name != case.customer_name:
            problems.append(f"customer named {name!r}, expected {case.customer_name!r}")
        if not name or ("Long NNN" in (name or "") and len(name) > 500):
            problems.append(f"customer name {name!r:.80}")
    assert tally.violated(SUITE, [f"{case.name}: {p}" for p in problems]) == []


def test_the_ordinary_deals_beside_them_are_unaffected(outcome: Outcome, tally: Tally) -> None:
    deals = [d for d in outcome.corpus.seed["salesforce"]["Opportunity"]]
    expected = invariants.expectations([d for d in deals if d["Id"] in outcome.corpus.good])
    tally.tried(SUITE, len(expected))
    problems = invariants.in_sandbox(outcome.first_state, expected)
    problems += invariants.written_back(outcome.first_state, expected)
    assert tally.violated(SUITE, problems) == []


def _void_check(outcome: Outcome) -> list[str]:
    deal = outcome.corpus.by_name("stripe invoice voided").deal_id
    invoice = outcome.invoice(deal)
    shown = outcome.opportunity(deal).get("Billing_Status__c")
    if invoice is None or invoice["status"] != "void" or shown != "Voided":
        return [f"voided out of band: ledger {invoice and invoice['status']}, Salesforce {shown}"]
    return []


def _payment_void_check(outcome: Outcome) -> list[str]:
    deal = outcome.corpus.by_name("quickbooks payment voided").deal_id
    invoice = outcome.invoice(deal)
    shown = outcome.opportunity(deal)
    status, _ = outcome.notes["void payment"]
    if status != 200:
        return [f"the sandbox refused the payment void: {outcome.notes['void payment']}"]
    problems = []
    if invoice is None or Decimal(str(invoice["amount_paid"])) != 0:
        problems.append(f"after the void, amount paid {invoice and invoice['amount_paid']}")
    if shown.get("Billing_Status__c") != "Invoiced" or Decimal(
        str(shown.get("Billing_Amount_Paid__c") or 0)
    ):
        problems.append(f"Salesforce after the void: {shown.get('Billing_Status__c')}")
    return problems


def _overpayment_check(outcome: Outcome) -> list[str]:
    deal = outcome.corpus.by_name("quickbooks overpayment").deal_id
    status, body = outcome.notes["overpayment"]
    invoice = outcome.invoice(deal)
    open_ = [
        r
        for r in ledger_rows(outcome.ledger_url, "discrepancies")
        if r["deal_id"] == deal and r["kind"] == "overpayment" and r["resolved_at"] is None
    ]
    if status != 200:
        # QuickBooks keeps the excess as unapplied credit: only 864.00 reaches the invoice.
        return [f"the sandbox refused the overpayment: {body}"]
    if invoice is None or invoice["status"] != "paid":
        return [f"overpaid invoice is {invoice and invoice['status']}"]
    applied = Decimal(str(invoice["amount_paid"]))
    if applied != Decimal("864.00"):
        # QuickBooks applies 864.00 and keeps the excess unapplied on the payment
        return [f"ledger paid {applied} on an 864.00 invoice QuickBooks shows paid 864.00"]
    if not open_:
        return ["an overpaid invoice and no overpayment discrepancy"]
    return []


def _refund_check(outcome: Outcome) -> list[str]:
    deal = outcome.corpus.by_name("refund over payment").deal_id
    status, body = outcome.notes["refund over payment"]
    invoice = outcome.invoice(deal)
    paid = Decimal(str(invoice["amount_paid"])) if invoice else None
    if status == 200:
        return [f"the vendor accepted a refund larger than the payment: {body}"]
    # The vendor refused it: billsync must show the partial payment only.
    if paid != Decimal("200.00"):
        return [f"after a refused over-refund, amount paid is {paid}, expected 200.00"]
    return []


def _deleted_customer_check(outcome: Outcome) -> list[str]:
    deal = outcome.notes["new deal id"]
    found = invoices_by_deal(outcome.state).get(deal, [])
    item = outcome.work("invoice", deal)
    if len(found) == 1 and found[0][2] == Decimal("480.00"):
        return []
    message = (item or {}).get("last_error_message") or ""
    if item is not None and item["status"] == "dead" and "deleted" in message:
        return []  # failed alone (the failure is the deal's), saying why and what to do
    return [f"new deal of a deleted customer: invoices {found}, failure {item}"]


MONEY_CHECKS = {
    "invoice voided": _void_check,
    "payment voided": _payment_void_check,
    "overpayment": _overpayment_check,
    "refund over payment": _refund_check,
    "deleted customer": _deleted_customer_check,
}


@pytest.mark.parametrize("check", list(MONEY_CHECKS.values()), ids=list(MONEY_CHECKS))
def test_money_out_of_band_is_taken_in(outcome: Outcome, check: Any, tally: Tally) -> None:
    tally.tried(SUITE)
    assert tally.violated(SUITE, [f"{check.__name__}: {p}" for p in check(outcome)]) == []


def test_everything_else_is_still_exactly_once(outcome: Outcome, tally: Tally) -> None:
    """Three runs and the out-of-band money later: still one invoice per good deal."""
    deals = outcome.corpus.seed["salesforce"]["Opportunity"]
    expected = invariants.expectations([d for d in deals if d["Id"] in outcome.corpus.good])
    tally.tried(SUITE)
    problems = invariants.in_sandbox(outcome.state, expected)
    assert tally.violated(SUITE, problems) == []


def test_the_deleted_customer_advice_can_be_followed_with_billsync(
    outcome: Outcome, tally: Tally
) -> None:
    """The failure names the commands; following them gets the deal invoiced once, to a
    new customer. Runs after the checks above: it changes the ledger and the sandbox."""
    tally.tried(SUITE)
    deal, account = outcome.notes["new deal id"], outcome.notes["deleted account"]
    item = outcome.work("invoice", deal)
    assert item is not None and item["status"] == "dead", item
    unlink = f"billsync customers unlink stripe {account}"
    assert unlink in item["last_error_message"], item["last_error_message"]
    env = billsync_env(outcome.ledger_url)
    steps = [
        billsync(env, outcome.workdir, "--config", str(outcome.handle.config_path),
                 *unlink.split()[1:], "--note", "customer deleted in Stripe"),
        billsync(env, outcome.workdir, "--config", str(outcome.handle.config_path),
                 "failures", "retry", str(item["id"])),
    ]  # fmt: skip
    problems = [f"{s.args[2:]} exited {s.returncode}: {s.stderr}" for s in steps if s.returncode]
    rerun = run(outcome.handle.config_path, env, outcome.workdir)
    state = outcome.handle.state()
    found = invoices_by_deal(state).get(deal, [])
    if [amount for *_, amount in found] != [Decimal("480.00")]:
        problems.append(f"after following the advice: invoices {found}, run exit {rerun.code}")
    billed = {i["id"]: i["customer"] for i in state["stripe"]["invoices"]}
    if any(billed[invoice_id] == outcome.notes["deleted customer"] for _, invoice_id, _ in found):
        problems.append(f"the new invoice went to the deleted customer: {found}")
    rows = ledger_rows(outcome.ledger_url, "audit")
    audit = [r for r in rows if r["action"] == "customer.unlinked"]
    if [r["subject"] for r in audit] != [f"customer:stripe:{account}"]:
        problems.append(f"the unlink is not audited once: {audit}")
    assert tally.violated(SUITE, problems) == []


# --- values Salesforce refuses: straight into the converter and the planner ----------

PLATFORM_REFUSES = [
    pytest.param({"Quantity": Decimal(0)}, "Quantity", "quantity 0 is not", id="zero quantity"),
    pytest.param({"Discount": Decimal(120)}, "Discount", "outside 0–100", id="discount 120 %"),
]


@pytest.mark.parametrize(("change", "field", "reason"), PLATFORM_REFUSES)
def test_values_salesforce_refuses_are_still_rejected_alone(
    change: dict[str, Any], field: str, reason: str, tally: Tally
) -> None:
    """Salesforce refuses these on save, but a record may still carry them (written
    before a validation existed, or read through a custom field): the converter or the
    planner rejects the deal with the field and the reason, and nothing raises."""
    record = sf_record(line_changes=change)
    outcome = record_to_outcome(record, planner())
    tally.tried(SUITE)
    text = str(outcome)
    problems = []
    if not isinstance(outcome, RecordProblem | Rejected) or field not in text or reason not in text:
        problems.append(f"{field}: outcome {text[:300]}")
    assert tally.violated(SUITE, problems) == []
