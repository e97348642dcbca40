"""`billsync plan` / `run --dry-run` end to end against `billsync sandbox serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from sandbox import jsonutil
from sandbox.generate import GenerateOptions, generate_seed
from sandbox.launcher import SandboxHandle, running_sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> SandboxHandle:
    workdir = tmp_path_factory.mktemp("plan")
    seed = generate_seed(GenerateOptions(deals=60, random_seed=11))
    deals = seed["salesforce"]["Opportunity"]
    deals[0]["Billing_Platform__c"] = "Xero"  # a deal that must be rejected with a reason
    deals[1].pop("OpportunityLineItems")  # a won deal with no products, only an amount
    deals[1].update(StageName="Closed Won", Amount=Decimal("5000.00"))
    (workdir / "seed.json").write_text(jsonutil.dumps(seed))
    with running_sandbox(workdir, seed_file=workdir / "seed.json") as handle:
        yield handle  # type: ignore[misc]


def billsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )  # fmt: skip


def test_dry_run_plans_valid_deals_and_explains_rejections(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    sandbox.reset_calls()
    result = billsync("run", "--dry-run", "--json", "--config", str(sandbox.config_path),
                      cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1, result.stderr  # some deals would be rejected
    report = json.loads(result.stdout)
    state = sandbox.state()["salesforce"]["Opportunity"]
    won = [d for d in state if d["IsWon"]]
    assert report["deals_seen"] == len(won)
    assert report["invoices_planned"] + report["rejected"] == len(won)
    by_deal = {r["deal_id"]: r for r in report["rejections"]}
    xero = by_deal[state[0]["Id"]]
    assert "'Xero' is not a known billing platform" in xero["reason"]
    assert xero["fix"]
    seeded = jsonutil.loads((sandbox.config_path.parent / "seed.json").read_text())
    no_products = [
        d["Id"]
        for d in seeded["salesforce"]["Opportunity"][1:]
        if d["StageName"] == "Closed Won" and not d.get("OpportunityLineItems")
    ]
    assert no_products  # the seed has some
    for deal_id in no_products:
        assert "has no products" in by_deal[deal_id]["reason"]
    amounts = {d["Id"]: d["Amount"] for d in won}
    for draft in report["drafts"]:
        difference = abs(Decimal(draft["total"]) - amounts[draft["deal_id"]])
        if draft["currency"] == "JPY":
            # Salesforce keeps JPY line totals to the cent; the invoice rounds each line
            # to whole yen: at most half a yen per line apart.
            assert difference <= Decimal(len(draft["lines"])) / 2
        else:
            assert difference == 0


def test_dry_run_writes_nothing(sandbox: SandboxHandle, tmp_path: Path) -> None:
    sandbox.reset_calls()
    result = billsync("plan", "--config", str(sandbox.config_path), cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    assert "Nothing was written." in result.stdout
    calls = sandbox.calls()["systems"]
    writes = [
        (system, endpoint)
        for system, endpoints in calls.items()
        for endpoint in endpoints
        if not endpoint.startswith("GET") and "oauth2/token" not in endpoint
    ]
    assert writes == []
    assert set(calls) == {"salesforce"}
    assert not Path(str(sandbox.config_path).replace("billsync.yaml", "billsync.db")).exists()


def test_plan_since_the_future_reads_nothing(sandbox: SandboxHandle, tmp_path: Path) -> None:
    result = billsync("plan", "--json", "--since", "2099-01-01",
                      "--config", str(sandbox.config_path), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["deals_seen"] == 0
