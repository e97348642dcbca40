"""`billsync demo`: the whole loop against the built-in sandbox, for a newcomer.

Starts the sandbox (its own process), seeds 60 deals across QuickBooks and Stripe —
a few of them wrong on purpose — runs a sync cycle, then plays the customer side
through the sandbox's admin API (full and partial payments, a failed payment, a refund,
a dispute), runs again so the payments flow back (through the providers' event feeds,
the catch-up path), and prints what happened and where to look next. Everything it
writes stays in a temporary folder that it names.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from billsync.config.loader import load_settings
from billsync.core.logs import configure_logging
from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import SandboxHandle, running_sandbox
from billsync.sync.engine.cycle import run_cycle
from billsync.sync.engine.summary import RunSummary
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head

DEMO_DEALS = 60


def demo_seed() -> dict[str, Any]:
    seed = generate_seed(GenerateOptions(deals=DEMO_DEALS, random_seed=2026))
    won = [d for d in seed["salesforce"]["Opportunity"] if d["StageName"] == "Closed Won"]
    # Mistakes a billing coordinator would catch: an unknown platform, a deal with no
    # products, and a negative quantity.
    won[0]["Billing_Platform__c"] = "Xero"
    won[1].pop("OpportunityLineItems", None)
    won[1]["Amount"] = Decimal("4200.00")
    if won[2].get("OpportunityLineItems"):
        won[2]["OpportunityLineItems"][0]["Quantity"] = Decimal(-3)
    return seed


def run_demo(console: Console) -> int:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="billsync-demo-"))
    console.print(f"[bold]billsync demo[/bold] — working in {workdir}")
    seed_file = workdir / "seed.json"
    seed_file.write_text(jsonutil.dumps(demo_seed()), encoding="utf-8")
    log_file = workdir / "billsync.log"
    with running_sandbox(workdir / "sandbox", seed_file=seed_file) as sandbox:
        console.print(f"sandbox up: Salesforce {sandbox.info['salesforce_url']}, "
                      f"QuickBooks {sandbox.info['quickbooks_url']}, "
                      f"Stripe {sandbox.info['stripe_url']}")  # fmt: skip
        settings = load_settings(sandbox.config_path, environ={})
        db = create_ledger_engine(settings.ledger.url)
        upgrade_to_head(db)
        ledger = Ledger(db)
        with log_file.open("w", encoding="utf-8") as log_stream:
            configure_logging(
                log_format="json", secrets=settings.secret_values(), stream=log_stream
            )
            first = _cycle(settings, ledger)
            console.print(_run_line("first run", first))
            played = _play_customers(sandbox, ledger)
            console.print("customers: " + ", ".join(f"{n} {what}" for what, n in played.items()))
            second = _cycle(settings, ledger)
            console.print(_run_line("second run", second))
        _report(console, ledger, sandbox, workdir, log_file)
        db.dispose()
    console.print(f"finished in {time.monotonic() - started:.1f} s")
    return 0


def _cycle(settings: Any, ledger: Ledger) -> RunSummary:
    from billsync.sync import wiring

    return run_cycle(wiring.engine_for(settings, ledger))


def _run_line(name: str, summary: RunSummary) -> str:
    return (
        f"{name}: {summary.deals_seen} deals read, {summary.invoices_created} invoices "
        f"created, {summary.payments_applied} payments applied, {summary.writebacks} "
        f"write-backs, {summary.needs_attention + summary.failures} needing attention"
    )


def _play_customers(sandbox: SandboxHandle, ledger: Ledger) -> Counter[str]:
    """Pay, part-pay, fail, refund and dispute some invoices, as customers would."""
    done: Counter[str] = Counter()
    invoices = _ledger_invoices(ledger)
    stripe = [i for i in invoices if i["target"] == "stripe"]
    quickbooks = [i for i in invoices if i["target"] == "quickbooks"]
    for invoice in stripe[:4]:
        sandbox.admin("POST", f"stripe/invoices/{invoice['id']}/pay", {})
        done["paid in full"] += 1
    # A third of each invoice as Stripe counts it (its own total, in minor units), so the
    # demo converts no amounts itself: that is the Stripe connector's job.
    stripe_totals = {i["id"]: i["total"] for i in sandbox.state()["stripe"].get("invoices", [])}
    for invoice in stripe[4:6]:
        part = stripe_totals[invoice["id"]] // 3
        sandbox.admin("POST", f"stripe/invoices/{invoice['id']}/pay", {"amount": part})
        done["paid in part"] += 1
    if len(stripe) > 8:
        sandbox.admin("POST", f"stripe/invoices/{stripe[6]['id']}/fail", {})
        done["payment failed"] += 1
        sandbox.admin("POST", f"stripe/invoices/{stripe[7]['id']}/pay", {})
        sandbox.admin("POST", f"stripe/invoices/{stripe[7]['id']}/refund", {})
        done["refunded"] += 1
        sandbox.admin("POST", f"stripe/invoices/{stripe[8]['id']}/pay", {})
        sandbox.admin("POST", f"stripe/invoices/{stripe[8]['id']}/dispute", {})
        done["disputed"] += 1
    for invoice in quickbooks[:3]:
        amount = format(invoice["total"], "f")
        sandbox.admin(
            "POST", "quickbooks/payments", {"invoice_id": invoice["id"], "amount": amount}
        )
        done["paid in full"] += 1
    for invoice in quickbooks[3:5]:
        half = format((invoice["total"] / 2).quantize(Decimal("0.01")), "f")
        sandbox.admin("POST", "quickbooks/payments", {"invoice_id": invoice["id"], "amount": half})
        done["paid in part"] += 1
    return done


def _ledger_invoices(ledger: Ledger) -> list[dict[str, Any]]:
    found = []
    for state in ("invoiced",):
        for record in ledger.deals_in_state(state):
            invoice = ledger.invoice_for_deal(record.deal_id, record.target)
            if invoice is not None:
                found.append({"target": invoice.target, "id": invoice.external_id,
                              "total": invoice.total, "currency": invoice.currency})  # fmt: skip
    return sorted(found, key=lambda i: (i["target"], i["id"]))


def _report(
    console: Console, ledger: Ledger, sandbox: SandboxHandle, workdir: Path, log_file: Path
) -> None:
    state = sandbox.state()
    table = Table(title="What billsync did")
    table.add_column("")
    table.add_column("count", justify="right")
    stripe_invoices = [i for i in state["stripe"].get("invoices", []) if i.get("status") != "draft"]
    opportunities = state["salesforce"]["Opportunity"]
    rows = [
        ("closed-won deals in Salesforce", sum(1 for o in opportunities if o.get("IsWon"))),
        ("invoices in QuickBooks", len(state["quickbooks"].get("Invoice", []))),
        ("invoices in Stripe", len(stripe_invoices)),
        ("deals written back", sum(1 for o in opportunities if o.get("Billing_Status__c"))),
        ("deals paid in full", _with_status(opportunities, "Paid")),
        ("deals partially paid", _with_status(opportunities, "Partially Paid")),
        ("open discrepancies", len(ledger.open_discrepancies())),
    ]  # fmt: skip
    for label, count in rows:
        table.add_row(label, str(count))
    console.print(table)
    statuses = Counter(o.get("Billing_Status__c") or "—" for o in opportunities if o.get("IsWon"))
    console.print("Billing_Status__c on the deals: " + ", ".join(
        f"{status} {n}" for status, n in statuses.most_common()))  # fmt: skip
    failures = ledger.list_work("dead", kind="invoice")
    if failures:
        console.print(f"\n[bold]Deals that need attention ({len(failures)})[/bold]:")
        for item in failures:
            console.print(f"  {item.last_error_message}", markup=False, highlight=False)
    config = sandbox.config_path
    console.print(
        "\nWhere to look next:\n"
        f"  ledger (SQLite): {workdir / 'sandbox' / 'billsync.db'}\n"
        f"  logs (JSON lines): {log_file}\n"
        f"  config pointing at a sandbox: {config}\n"
        "  try: billsync sandbox serve --config-out billsync.yaml, then "
        "billsync plan / run / reconcile --config billsync.yaml"
    )


def _with_status(opportunities: list[dict[str, Any]], status: str) -> int:
    return sum(1 for o in opportunities if o.get("Billing_Status__c") == status)
