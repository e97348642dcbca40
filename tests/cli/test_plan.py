"""`billsync plan` / `run --dry-run` end to end against `billsync sandbox serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import SandboxHandle, running_sandbox


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


def billsync(*args: str, cwd: Path, columns: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(
        [sys.executable, "-m", "billsync.sync.cli", *args],
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


def _own_config(sandbox: SandboxHandle, tmp_path: Path) -> Path:
    import yaml

    config = yaml.safe_load(sandbox.config_path.read_text(encoding="utf-8"))
    config["ledger"]["url"] = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = tmp_path / "billsync.yaml"
    out.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return out


def test_plan_reads_the_ledger_after_a_run(sandbox: SandboxHandle, tmp_path: Path) -> None:
    """Issue 16: plan listed 18 invoices 'that would be created' where the run created 1.
    After a run, the deals it re-reads are already invoiced (skipped); an intent pending
    in the deal's own target is an adoption; one in another target a routing conflict."""
    from billsync.sync.ledger import Ledger, create_ledger_engine

    config = _own_config(sandbox, tmp_path)
    first = billsync("run", "--json", "--config", str(config), cwd=tmp_path)
    assert first.returncode in (0, 1), first.stderr[-2000:]
    created = json.loads(first.stdout.strip().splitlines()[-1])["invoices_created"]
    assert created > 0
    db = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger = Ledger(db)
    invoiced = [r for r in ledger.deals_in_state("invoiced")]
    # Pretend two answers were lost: one intent pending in its own target, one in the
    # other target than the deal now routes to.
    own, other = invoiced[0], invoiced[1]
    ledger.set_deal_state(own.deal_id, own.target, "invoicing", external_invoice_id=None)
    away = "stripe" if other.target == "quickbooks" else "quickbooks"
    ledger.set_deal_state(other.deal_id, other.target, "needs_attention", external_invoice_id=None)
    ledger.record_intent(other.deal_id, away, other.revision, "k-lost", reference="SF-LOST")
    db.dispose()

    result = billsync("plan", "--json", "--config", str(config), cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["invoices_planned"] == 0, report["drafts"]
    assert len(report["already_invoiced"]) == created - 2
    # Deals the run rejected at the target (e.g. GBP into a USD QuickBooks company) are
    # known failures, skipped for this content and mapping, as the run skips them.
    failed = {f["deal_id"] for f in report["known_failures"] if f["status"] == "dead"}
    assert {k["deal_id"] for k in report["known_failures_skipped"]} <= failed
    assert [a["deal_id"] for a in report["adoptions"]] == [own.deal_id]
    assert [c["deal_id"] for c in report["routing_conflicts"]] == [other.deal_id]
    assert "SF-LOST" in report["routing_conflicts"][0]["note"]
    assert report["verdicts"]["already_invoiced"] == created - 2
    text = billsync("plan", "--config", str(config), cwd=tmp_path, columns="40")
    assert own.deal_id in text.stdout and other.deal_id in text.stdout  # ids whole
    assert "Nothing was written." in text.stdout


def test_plan_on_a_fresh_ledger_without_a_start_says_the_run_would_stop(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    import yaml

    config = yaml.safe_load(_own_config(sandbox, tmp_path).read_text(encoding="utf-8"))
    config["sync"].pop("start_from")
    path = tmp_path / "no-start.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = billsync("plan", "--json", "--config", str(path), cwd=tmp_path)
    report = json.loads(result.stdout)
    assert report["first_run"]["stops"] is True
    assert report["first_run"]["won_deals"] == report["deals_seen"] > 0
    assert not (tmp_path / "ledger.db").exists()
