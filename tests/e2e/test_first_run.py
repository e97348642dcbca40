"""A safe first run (issue 16): a ledger that has never run does not bill history.

500 closed-won deals last changed in 2024 and 6 changed after 2026-10-01, in a sandbox
whose config chooses no start: `billsync run` stops with exit 2, names the count, says
how to choose and invoices nothing; `--since 2026-10-01` invoices only the 6 newer deals
and records the choice, so the next run without flags keeps to it; `--backfill` on a
fresh ledger is the explicit way to bill everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import SandboxHandle, running_sandbox
from billsync.sync.engine.first_run import recorded_start
from billsync.sync.ledger import Ledger, create_ledger_engine

pytestmark = pytest.mark.slow

HISTORICAL = 500
NEW = 6
NEW_IDS = {f"006{n:012d}AAA" for n in range(HISTORICAL, HISTORICAL + NEW)}


def billsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "billsync.sync.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False,
    )  # fmt: skip


def history_seed() -> dict[str, Any]:
    seed = generate_seed(GenerateOptions(deals=HISTORICAL + NEW, random_seed=16))
    deals = seed["salesforce"]["Opportunity"]
    for n, deal in enumerate(deals):
        # Every deal won and billable (QuickBooks, USD lines), so counts are exact.
        deal["StageName"] = "Closed Won"
        deal["CurrencyIsoCode"] = "USD"
        deal["Billing_Platform__c"] = "QuickBooks"
        if n < HISTORICAL:
            deal["CloseDate"] = "2024-03-01"
            deal["SystemModstamp"] = f"2024-03-01T{n // 60 % 24:02d}:{n % 60:02d}:00.000Z"
    for account in seed["salesforce"]["Account"]:
        account["CurrencyIsoCode"] = "USD"
    return seed


def config_without_start(handle: SandboxHandle, out: Path) -> Path:
    config = yaml.safe_load(handle.config_path.read_text(encoding="utf-8"))
    config["sync"].pop("start_from", None)
    config["salesforce"].pop("start_from", None)
    config["ledger"]["url"] = f"sqlite:///{out.parent / (out.stem + '.db')}"
    out.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return out


def invoices(handle: SandboxHandle) -> list[dict[str, Any]]:
    state = handle.admin("GET", "state")
    return list(state["quickbooks"].get("Invoice", []))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("first-run")
    (workdir / "seed.json").write_text(jsonutil.dumps(history_seed()))
    with running_sandbox(workdir, seed_file=workdir / "seed.json") as handle:
        yield handle, workdir


def test_a_first_run_without_a_start_stops_and_names_the_count(sandbox: Any) -> None:
    handle, workdir = sandbox
    config = config_without_start(handle, workdir / "no-start.yaml")
    result = billsync("run", "--json", "--config", str(config), cwd=workdir)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"{HISTORICAL + NEW} closed-won deals exist" in result.stderr
    assert "--since" in result.stderr and "--backfill" in result.stderr
    assert "Traceback" not in result.stderr
    assert invoices(handle) == []
    again = billsync("run", "--config", str(config), cwd=workdir)
    assert again.returncode == 2, "a refused first run records nothing that lets the next pass"


def test_since_invoices_only_newer_deals_and_the_choice_holds(sandbox: Any) -> None:
    handle, workdir = sandbox
    config = config_without_start(handle, workdir / "since.yaml")
    result = billsync(
        "run", "--json", "--since", "2026-01-01", "--config", str(config), cwd=workdir
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["deals_seen"] == NEW, summary
    billed = {inv["PrivateNote"].rsplit(" ", 1)[-1] for inv in invoices(handle)}
    assert billed and billed <= NEW_IDS, "only deals changed after --since are invoiced"
    assert summary["invoices_created"] == len(billed)
    # No flags now: the ledger remembers where it started and bills nothing older.
    second = billsync("run", "--json", "--config", str(config), cwd=workdir)
    assert second.returncode in (0, 1), second.stderr[-2000:]
    assert json.loads(second.stdout.strip().splitlines()[-1])["invoices_created"] == 0
    assert len(invoices(handle)) == len(billed)
    db = create_ledger_engine(f"sqlite:///{workdir / 'since.db'}")
    try:
        assert recorded_start(Ledger(db)) == {"how": "since", "from": "2026-01-01T00:00:00+00:00"}
    finally:
        db.dispose()
