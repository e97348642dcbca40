"""The failure log and status on a ledger filled by a real sandbox run.

Seeded failures: deals billsync must reject (an unknown billing platform, no products,
and whatever the generator made that QuickBooks cannot bill) and a Salesforce
validation rule that refuses one deal's write-back once. `billsync run` (a subprocess,
as cron runs it) fills the ledger; the ops commands then list, show, retry and resolve
those failures, a second run carries out the retry, and status reports both runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import running_sandbox
from billsync.sync.ledger import Ledger, create_ledger_engine
from tests.e2e.test_run_e2e import expected_outcome
from tests.ops.conftest import Cli

pytestmark = pytest.mark.slow

FIELDS = {
    "id", "deal_id", "deal_name", "target", "stage", "error_class", "code", "message",
    "status", "attempts", "first_seen", "last_attempt_at", "next_attempt_at",
}  # fmt: skip
RULE = "Billing fields are locked while the deal is in legal review"


def billsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "billsync.sync.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False,
    )  # fmt: skip


def test_failures_and_status_after_a_sandbox_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = generate_seed(GenerateOptions(deals=24, random_seed=5))
    won = [d for d in seed["salesforce"]["Opportunity"] if d["StageName"] == "Closed Won"]
    won[0]["Billing_Platform__c"] = "Xero"
    won[1].pop("OpportunityLineItems", None)
    bad = {d["Id"] for d in won if expected_outcome(d)[0] is None}
    assert len(bad) >= 2
    locked = next(d["Id"] for d in won if d["Id"] not in bad)
    (tmp_path / "seed.json").write_text(jsonutil.dumps(seed))
    with running_sandbox(tmp_path, seed_file=tmp_path / "seed.json") as handle:
        config = str(handle.config_path)
        handle.admin("POST", "salesforce/fail_writes", {
            "ids": [locked], "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "message": RULE, "times": 1})  # fmt: skip
        first = billsync("run", "--json", "--config", config, cwd=tmp_path)
        assert first.returncode == 1, first.stderr[-2000:]

        # The real console script, as an operator or a script calls it.
        listed = billsync("failures", "list", "--json", "--config", config, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr[-2000:]
        rows = json.loads(listed.stdout)
        for row in rows:
            assert set(row) >= FIELDS, FIELDS - set(row)
        rejected = {row["deal_id"]: row for row in rows if row["code"] == "VALIDATION"}
        assert set(rejected) == bad
        assert all(r["status"] == "dead" and r["error_class"] == "invalid_data"
                   for r in rejected.values())  # fmt: skip
        named = [(r["deal_name"], r["attempts"]) for r in rejected.values()]
        assert all(name and attempts == 1 for name, attempts in named), named
        [writeback] = [row for row in rows if row["stage"] == "writeback"]
        assert (writeback["deal_id"], writeback["code"], writeback["status"]) == (
            locked, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "dead")  # fmt: skip
        assert RULE in writeback["message"]

        cli = Cli(f"sqlite:///{tmp_path / 'billsync.db'}", monkeypatch)
        shown = cli("failures", "show", str(writeback["id"]), "--config", config)
        assert shown.exit_code == 0, shown.output
        text = " ".join(shown.stdout.split())
        assert f"a validation rule on opportunity {locked} rejected the billing fields" in text
        assert "exempt the integration user or fix the data" in text
        assert RULE in text

        retried = cli("failures", "retry", str(writeback["id"]), "--config", config,
                      "--actor", "ops:e2e", "--note", "rule relaxed")  # fmt: skip
        assert retried.exit_code == 0, retried.output
        one_bad = sorted(rejected)[0]
        resolved = cli("failures", "resolve", str(rejected[one_bad]["id"]), "--config", config,
                       "--note", "billed by hand in QuickBooks")  # fmt: skip
        assert resolved.exit_code == 0, resolved.output

        second = billsync("run", "--json", "--config", config, cwd=tmp_path)
        assert second.returncode in (0, 1), second.stderr[-2000:]
        opportunity = next(o for o in handle.state()["salesforce"]["Opportunity"]
                           if o["Id"] == locked)  # fmt: skip
        assert opportunity["Billing_Status__c"] == "Invoiced"  # the retried write-back landed

        after = cli.json("failures", "list", "--status", "all", "--json", "--config", config)
        ids = {row["id"] for row in after}
        assert writeback["id"] not in ids  # succeeded: no longer a failure
        assert {row["id"] for row in after if row["status"] == "resolved"} == {
            rejected[one_bad]["id"]}  # fmt: skip
        gone = cli("failures", "show", str(writeback["id"]), "--config", config)
        assert gone.exit_code == 2 and "no failure with id" in gone.stderr
        history = cli.json("failures", "show", str(rejected[one_bad]["id"]), "--json",
                           "--config", config)  # fmt: skip
        [entry] = history["audit"]
        assert entry["action"] == "work.resolve"
        assert entry["details"]["note"] == "billed by hand in QuickBooks"

        status = cli("status", "--json", "--config", config)
        document = json.loads(status.stdout)
        assert status.exit_code == 1  # the rejected deals still wait for an operator
        assert len(document["runs"]) == 2 and all(r["outcome"] for r in document["runs"])
        assert document["queue"]["by_status"]["dead"] == len(bad) - 1
        assert {"salesforce.deals"} <= {c["name"] for c in document["cursors"]}
        quota = document["source_quota"]
        assert quota["known"] is True, quota  # recorded by the runs from Sforce-Limit-Info
        assert quota["system"] == "salesforce" and quota["label"] == "Salesforce"
        [company] = document["credentials"]["quickbooks"]
        assert company["access_token_valid"] is True
        stored = _stored_tokens(tmp_path)
        assert stored and not any(token in status.output for token in stored)


def _stored_tokens(workdir: Path) -> list[str]:
    engine = create_ledger_engine(f"sqlite:///{workdir / 'billsync.db'}")
    try:
        rows = Ledger(engine).credential_rows("quickbooks:")
        found: list[Any] = [r.data.get(k) for r in rows for k in ("access_token", "refresh_token")]
        return [str(token) for token in found if token]
    finally:
        engine.dispose()
