"""Vendor faults: 20 % 5xx, 10 % 429, 5 % dropped connections (half of them after the
vendor did the work) and 200 ms latency spikes, on Salesforce, QuickBooks and Stripe in
turn and then on all three at once, while new deals arrive and customers pay.

Under each fault plan `billsync run` is repeated as cron would (a bounded number of
times) until it has nothing left to do; then the faults stop and one more run must be
clean. Invariants: every valid deal invoiced exactly once in the right target with the
right total, every write-back present, ledger and targets in agreement, no intent
left open, every payment counted once, attempts bounded, and honest exit codes (0
exactly when the run recorded no failure; never a crash).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from billsync.core import money
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import SandboxHandle, running_sandbox
from tests.reliability import invariants
from tests.reliability.chaos import Size
from tests.reliability.summary import Tally
from tests.reliability.world import (
    RunResult,
    billsync_env,
    ledger_rows,
    run,
    run_until_done,
    seed_more,
    sqlite_url,
    write_seed,
)

SUITE = "vendor faults"
PHASES = (("salesforce",), ("quickbooks",), ("stripe",), ("salesforce", "quickbooks", "stripe"))
FAULTS = {"error_rate_5xx": 0.2, "rate_429": 0.1, "drop_rate": 0.05, "drop_phase": "random"}
SPIKE_MS = 200


@contextmanager
def faults_with_spikes(
    handle: SandboxHandle, systems: tuple[str, ...], rng: random.Random
) -> Iterator[None]:
    """The fault plan on `systems`, with a 200 ms latency spike switched on for a
    random ~0.3 s every ~1 s (each switch a new fault seed, so the dice keep rolling)."""
    stop = threading.Event()

    def plan(latency: int) -> dict[str, Any]:
        return {**FAULTS, "systems": list(systems), "latency_ms": latency,
                "seed": rng.randrange(10**9)}  # fmt: skip

    def spikes() -> None:
        while not stop.wait(rng.uniform(0.5, 1.5)):
            handle.faults(plan(SPIKE_MS))
            if stop.wait(rng.uniform(0.1, 0.5)):
                break
            handle.faults(plan(0))

    handle.faults(plan(0))
    thread = threading.Thread(target=spikes, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        handle.faults({})


def _valid_deals(count: int, random_seed: int, offset: int) -> dict[str, Any]:
    """A seed whose won deals can all be invoiced (ids start at `offset`, so phases
    do not collide)."""
    seed = generate_seed(GenerateOptions(deals=count, random_seed=random_seed))
    deals = []
    for n, deal in enumerate(seed["salesforce"]["Opportunity"]):
        if not deal.get("OpportunityLineItems"):
            continue
        deal["Id"] = f"006F{offset + n:011d}AAA"
        deal["StageName"] = "Closed Won"
        for m, line in enumerate(deal["OpportunityLineItems"]):
            line["Id"] = f"00kF{(offset + n) * 10 + m:011d}AAA"
        if deal["CurrencyIsoCode"] != "USD":
            deal["Billing_Platform__c"] = "Stripe"
        elif deal.get("Billing_Platform__c") is None:
            deal["Billing_Platform__c"] = "QuickBooks"
        deals.append(deal)
    seed["salesforce"]["Opportunity"] = deals
    return seed


def _pay_some(handle: SandboxHandle, ledger_url: str, rng: random.Random) -> int:
    """Customers pay a few open invoices (in full or in part), out of band."""
    rows = [r for r in ledger_rows(ledger_url, "invoices") if r["status"] == "open"]
    paid = 0
    for row in rng.sample(rows, min(4, len(rows))):
        if row["target"] == "stripe":
            handle.admin("POST", f"stripe/invoices/{row['external_id']}/pay", {})
        else:
            amount = format(Decimal(str(row["total"])) / 2, ".2f")
            handle.admin(
                "POST", "quickbooks/payments", {"invoice_id": row["external_id"], "amount": amount}
            )
        paid += 1
    return paid


def _honest(result: RunResult) -> list[str]:
    if result.code not in (0, 1, 3) or "Traceback" in result.stderr or result.summary is None:
        return [f"exit {result.code}: {result.stderr[-800:]}"]
    if result.code == 3:
        return []
    summary = result.summary
    troubled = summary["failures"] or summary["needs_attention"] or summary["stopped"]
    if (result.code == 0) == bool(troubled):
        return [f"exit {result.code} for a run with failures={summary['failures']}, "
                f"stopped={summary['stopped']}"]  # fmt: skip
    return []


def _money_counted_once(ledger_url: str, state: dict[str, Any]) -> list[str]:
    """Each ledger invoice's amount paid is what the target applied to it. Stripe counts
    an overpayment in ``amount_paid`` (more than was due), and then an overpayment
    discrepancy says so; QuickBooks keeps the excess unapplied on the payment, so there
    the ledger's paid is exactly TotalAmt − Balance."""
    problems = []
    stripe = {i["id"]: i for i in state["stripe"].get("invoices", [])}
    quickbooks = {i["Id"]: i for i in state["quickbooks"].get("Invoice", [])}
    overpaid = {
        (r["target"], r["deal_id"]): r["actual"]
        for r in ledger_rows(ledger_url, "discrepancies")
        if r["kind"] == "overpayment" and r["resolved_at"] is None
    }
    for row in ledger_rows(ledger_url, "invoices"):
        paid = Decimal(str(row["amount_paid"]))
        if row["target"] == "stripe":
            inv = stripe[row["external_id"]]
            applied = money.from_minor_units(inv["amount_paid"], inv["currency"].upper())
        else:
            inv = quickbooks[row["external_id"]]
            applied = Decimal(str(inv["TotalAmt"])) - Decimal(str(inv["Balance"]))
        flagged = overpaid.get((row["target"], row["deal_id"])) == format(paid, "f")
        if paid != applied and not (paid > applied and flagged):
            problems.append(f"invoice {row['external_id']}: ledger paid {paid}, target {applied}")
    return problems


def test_runs_finish_exactly_once_under_vendor_faults(
    tmp_path: Path, size: Size, rng: random.Random, tally: Tally
) -> None:
    first = _valid_deals(size.fault_deals, rng.randrange(10**6), 0)
    ledger_url = sqlite_url(tmp_path / "billsync.db")
    env = billsync_env(ledger_url)
    all_deals: list[dict[str, Any]] = []
    problems: list[str] = []
    seed_file = write_seed(tmp_path / "seed.json", first)
    with running_sandbox(tmp_path / "sb", seed_file=seed_file) as h:
        for phase, systems in enumerate(PHASES):
            label = "+".join(systems)
            h.reset_calls()
            results: list[RunResult] = []
            for turn in range(size.fault_rounds):
                batch = first
                if phase or turn:
                    offset = 1000 * (phase * 10 + turn)
                    batch = _valid_deals(size.fault_deals, rng.randrange(10**6), offset)
                    deals = batch["salesforce"]["Opportunity"]
                    seed_more(h, {"salesforce": {"Opportunity": deals}})
                    _pay_some(h, ledger_url, rng)
                all_deals += batch["salesforce"]["Opportunity"]
                with faults_with_spikes(h, systems, rng):
                    done = run_until_done(
                        h.config_path, env, tmp_path, max_runs=size.fault_max_runs,
                        done=lambda r: r.code == 0,
                    )  # fmt: skip
                results += done
                if done[-1].code != 0:
                    problems.append(f"{label}: not settled after {len(done)} runs under faults")
            rolled = sum(n for name, n in h.calls()["totals"].items() if name in systems)
            tally.tried(SUITE, rolled)  # each call under the fault plan is a roll of the dice
            print(f"{label}: {len(results)} runs, {rolled} calls under faults, "
                  f"exits {[r.code for r in results]}")  # fmt: skip
            problems += [f"{label}: {p}" for r in results for p in _honest(r)]
            clean = run(h.config_path, env, tmp_path)
            problems += [f"{label}, faults off: {p}" for p in _honest(clean)]
            if clean.code != 0:
                problems.append(f"{label}: the run after the faults exited {clean.code}")
            state = h.state()
            expected = invariants.expectations(all_deals)
            problems += [
                f"{label}: {p}" for p in invariants.everything(ledger_url, state, expected)
            ]
            problems += [f"{label}: {p}" for p in _money_counted_once(ledger_url, state)]
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found[:40])
