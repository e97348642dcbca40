"""Re-routing after a lost answer (issue 16; the vendor-faults suite of `make chaos`).

QuickBooks creates invoices but their answers are lost (the sandbox drops the connection
after it did the work); then those deals' Billing_Platform__c is changed to Stripe, and
`billsync run` is repeated until it has nothing left to do. At most one live invoice per
deal across both targets; each re-routed deal ends with exactly one, and the ledger says
what happened: a `routing_changed_after_invoice` discrepancy naming both targets (the
QuickBooks invoice adopted) or the QuickBooks intent closed as abandoned (confirmed absent).
"""

from __future__ import annotations

import random
from pathlib import Path

from billsync.sandbox.launcher import running_sandbox
from tests.reliability.chaos import Size
from tests.reliability.summary import Tally
from tests.reliability.test_frozen_run import invoices_per_deal
from tests.reliability.test_vendor_faults import _valid_deals
from tests.reliability.world import (
    billsync_env,
    ledger_rows,
    run,
    run_until_done,
    sqlite_url,
    write_seed,
)

SUITE = "vendor faults"
LOST_ANSWERS = {"systems": ["quickbooks"], "drop_rate": 0.6, "drop_phase": "after"}


def test_a_lost_answer_then_a_reroute_bills_once(
    tmp_path: Path, size: Size, rng: random.Random, tally: Tally
) -> None:
    seed = _valid_deals(max(12, size.fault_deals * 2), rng.randrange(10**6), 0)
    for deal in seed["salesforce"]["Opportunity"]:
        deal["CurrencyIsoCode"] = "USD"
        deal["Billing_Platform__c"] = "QuickBooks"
    deals = [d["Id"] for d in seed["salesforce"]["Opportunity"]]
    ledger_url = sqlite_url(tmp_path / "billsync.db")
    env = billsync_env(ledger_url, BILLSYNC_RETRY__MAX_ATTEMPTS="20")
    problems: list[str] = []
    with running_sandbox(tmp_path / "sb", seed_file=write_seed(tmp_path / "s.json", seed)) as h:
        lost: list[str] = []
        for _attempt in range(8):
            h.faults({**LOST_ANSWERS, "seed": rng.randrange(10**6)})
            run(h.config_path, env, tmp_path)
            h.faults({})
            in_quickbooks = invoices_per_deal(h.state())
            lost = [
                row["deal_id"]
                for row in ledger_rows(ledger_url, "deals")
                if row["target"] == "quickbooks"
                and row["external_invoice_id"] is None
                and row["state"] in ("invoicing", "failed")
                and in_quickbooks.get(row["deal_id"])
            ]
            if lost:
                break
        assert lost, "no answer was lost after QuickBooks did the work in 8 runs"
        for deal_id in lost:
            h.admin("PATCH", f"salesforce/Opportunity/{deal_id}", {"Billing_Platform__c": "Stripe"})
        results = run_until_done(h.config_path, env, tmp_path, max_runs=size.fault_max_runs + 4)
        tally.tried(SUITE, len(lost))
        problems += [
            f"run exited {r.code}: {r.stderr[-600:]}" for r in results if r.code not in (0, 1)
        ]
        state = h.state()
    per_deal = invoices_per_deal(state)
    problems += [f"deal {d}: {n} live invoices" for d, n in per_deal.items() if n > 1]
    problems += [f"deal {d}: no invoice" for d in deals if not per_deal.get(d)]
    changed = {
        row["deal_id"]
        for row in ledger_rows(ledger_url, "discrepancies")
        if row["kind"] == "routing_changed_after_invoice"
    }
    abandoned = {
        row["deal_id"]
        for row in ledger_rows(ledger_url, "deals")
        if row["target"] == "quickbooks" and row["state"] == "abandoned"
    }
    for deal_id in lost:
        if deal_id not in changed | abandoned:
            problems.append(
                f"deal {deal_id}: re-routed after a lost answer, but the ledger records "
                "neither routing_changed_after_invoice nor an abandoned intent"
            )
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found[:30])
