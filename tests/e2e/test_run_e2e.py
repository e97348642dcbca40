"""`billsync run` as a subprocess against `billsync sandbox serve`: the whole loop.

A mixed 200-deal seed ends with exactly one invoice per valid deal in the right target
with the right total to the minor unit, every bad deal recorded with its reason, every
write-back present and exit code 1; once the bad deals are fixed in Salesforce the next
run exits 0; a run with nothing changed writes nothing anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from billsync.core import money
from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import SandboxHandle, running_sandbox
from billsync.sync.ledger import Ledger, create_ledger_engine

pytestmark = pytest.mark.slow


def billsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "billsync.sync.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False,
    )  # fmt: skip


def run_json(handle: SandboxHandle, cwd: Path) -> tuple[int, dict[str, Any]]:
    result = billsync("run", "--json", "--config", str(handle.config_path), cwd=cwd)
    assert result.stdout.strip(), result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


def line_amount(line: dict[str, Any], currency: str) -> Decimal:
    exact = line["Quantity"] * line["UnitPrice"] * (100 - (line.get("Discount") or 0)) / 100
    return exact.quantize(money.minor_unit(currency), rounding=ROUND_HALF_UP)


def expected_outcome(deal: dict[str, Any]) -> tuple[str | None, Decimal | None]:
    """(target, total) billsync must produce, or (None, None) for a deal it must reject."""
    platform = (deal.get("Billing_Platform__c") or "QuickBooks").lower()
    target = {"quickbooks": "quickbooks", "stripe": "stripe"}.get(platform)
    lines = deal.get("OpportunityLineItems") or []
    currency = deal["CurrencyIsoCode"]
    if target is None or not lines or (target == "quickbooks" and currency != "USD"):
        return None, None
    return target, sum((line_amount(line, currency) for line in lines), Decimal(0))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("e2e")
    seed = generate_seed(GenerateOptions(deals=200, random_seed=7))
    deals = seed["salesforce"]["Opportunity"]
    deals[3]["Billing_Platform__c"] = "Xero"  # an unknown billing platform
    (workdir / "seed.json").write_text(jsonutil.dumps(seed))
    with running_sandbox(workdir, seed_file=workdir / "seed.json") as handle:
        yield handle, seed, workdir


def invoices_by_deal(state: dict[str, Any]) -> dict[str, list[tuple[str, str, Decimal]]]:
    found: dict[str, list[tuple[str, str, Decimal]]] = {}
    for invoice in state["quickbooks"].get("Invoice", []):
        note = invoice.get("PrivateNote") or ""
        deal_id = note.rsplit(" ", 1)[-1]
        found.setdefault(deal_id, []).append(("quickbooks", invoice["Id"], invoice["TotalAmt"]))
    for invoice in state["stripe"].get("invoices", []):
        deal_id = (invoice.get("metadata") or {}).get("billsync_deal_id")
        if deal_id and invoice["status"] != "draft":
            total = money.from_minor_units(invoice["total"], invoice["currency"].upper())
            found.setdefault(deal_id, []).append(("stripe", invoice["id"], total))
    return found


def test_full_loop(world: Any) -> None:
    handle, seed, workdir = world
    won = [d for d in seed["salesforce"]["Opportunity"] if d["StageName"] == "Closed Won"]
    expected = {d["Id"]: expected_outcome(d) for d in won}
    bad = {deal_id for deal_id, (target, _) in expected.items() if target is None}
    assert bad and len(bad) < len(won)

    code, summary = run_json(handle, workdir)
    assert code == 1, summary
    assert summary["deals_seen"] == len(won)
    assert summary["invoices_created"] == len(won) - len(bad)

    state = handle.state()
    invoices = invoices_by_deal(state)
    for deal_id, (target, total) in expected.items():
        if target is None:
            assert deal_id not in invoices
            continue
        assert len(invoices.get(deal_id, [])) == 1, (deal_id, invoices.get(deal_id))
        (got_target, _, got_total) = invoices[deal_id][0]
        assert (got_target, got_total) == (target, total), deal_id

    ledger = Ledger(create_ledger_engine(f"sqlite:///{workdir / 'billsync.db'}"))
    for deal_id in bad:
        item = ledger.find_work("invoice", deal_id)
        assert item is not None and item.status == "dead", deal_id
        assert deal_id in (item.last_error_message or "") and " — " in item.last_error_message

    opportunities = {o["Id"]: o for o in state["salesforce"]["Opportunity"]}
    for deal_id in expected:
        fields = opportunities[deal_id]
        if deal_id in bad:
            assert fields["Billing_Status__c"] == "Error" and fields["Billing_Sync_Error__c"]
        else:
            assert fields["Billing_Invoice_Id__c"] == invoices[deal_id][0][1]
            assert fields["Billing_Status__c"] == "Invoiced"

    # Fix every bad deal in Salesforce: a known platform, a currency QuickBooks can
    # bill, products where there were none.
    product = seed["salesforce"]["Product2"][0]
    for deal_id in bad:
        change: dict[str, Any] = {"Billing_Platform__c": "Stripe"}
        deal = next(d for d in won if d["Id"] == deal_id)
        if not deal.get("OpportunityLineItems"):
            change["OpportunityLineItems"] = [
                {"Product2Id": product["Id"], "Quantity": 1, "UnitPrice": deal["Amount"]}
            ]
        response = requests.patch(
            f"{handle.admin_url}/_sandbox/salesforce/Opportunity/{deal_id}",
            data=jsonutil.dumps(change), headers={"Content-Type": "application/json"},
            timeout=30,
        )  # fmt: skip
        assert response.status_code < 300, response.text

    code, summary = run_json(handle, workdir)
    assert code == 0, summary
    assert summary["invoices_created"] == len(bad)
    invoices = invoices_by_deal(handle.state())
    assert all(len(invoices[deal_id]) == 1 for deal_id in expected)

    # Nothing changed since: the next runs write nothing anywhere.
    run_json(handle, workdir)  # reads back the deals the previous run wrote to
    handle.reset_calls()
    code, summary = run_json(handle, workdir)
    assert code == 0, summary
    counted = handle.calls()
    # billsync's own count of its API calls matches what the vendors (sandbox) saw.
    assert summary["api_calls"] == counted["totals"], (summary["api_calls"], counted)
    calls = counted["systems"]
    writes = [
        (system, endpoint)
        for system, endpoints in calls.items()
        for endpoint in endpoints
        if endpoint.split()[0] in ("POST", "PATCH", "DELETE")
        and "token" not in endpoint
        and "query" not in endpoint
    ]
    assert writes == [], calls
    assert calls["salesforce"].get("GET query", 0) <= 1
    assert calls.get("quickbooks", {}).get("GET cdc", 0) <= 1
    assert calls.get("stripe", {}).get("GET /v1/events", 0) <= 1
