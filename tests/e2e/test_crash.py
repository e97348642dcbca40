"""Crash safety: `billsync run` killed with SIGKILL at random points, then run to the end.

Seeded and bounded (ten kills per backend). Whatever instant the process dies at —
between intent and call, mid-batch, between the vendor's answer and the ledger write —
the end state has exactly one invoice per valid deal and none missing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox import jsonutil
from sandbox.generate import GenerateOptions, generate_seed
from sandbox.launcher import running_sandbox
from tests.e2e.test_run_e2e import expected_outcome, invoices_by_deal

pytestmark = pytest.mark.slow

KILLS = 10


def _env(ledger_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    env["BILLSYNC_LEDGER__URL"] = ledger_url
    # The killed runs never release their lease: keep its expiry short for the test.
    env["BILLSYNC_SYNC__LEASE_TTL_SECONDS"] = "3"
    return env


def _crash_then_finish(tmp_path: Path, ledger_url: str) -> None:
    seed = generate_seed(GenerateOptions(deals=100, random_seed=99))
    (tmp_path / "seed.json").write_text(jsonutil.dumps(seed))
    rng = random.Random(1234)
    with running_sandbox(tmp_path / "sb", seed_file=tmp_path / "seed.json") as handle:
        # A little latency on every call so kills land inside vendor calls too.
        handle.faults({"latency_ms": 15})
        command = [sys.executable, "-m", "sync.cli", "run", "--json",
                   "--config", str(handle.config_path)]  # fmt: skip
        env = _env(ledger_url)
        for _ in range(KILLS):
            process = subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(rng.uniform(0.8, 4.0))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            time.sleep(3.1)  # let the killed run's lease expire
        handle.faults({})
        for _ in range(5):
            finished = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True,
                                      text=True, timeout=300, check=False)  # fmt: skip
            assert finished.returncode in (0, 1), finished.stderr[-2000:]
            last: dict[str, Any] = jsonutil.loads(finished.stdout.strip().splitlines()[-1])
            if last["invoices_created"] == 0 and last["invoices_adopted"] == 0:
                break
        state = handle.state()
    invoices = invoices_by_deal(state)
    won = [d for d in seed["salesforce"]["Opportunity"] if d["StageName"] == "Closed Won"]
    for deal in won:
        target, total = expected_outcome(deal)
        found = invoices.get(deal["Id"], [])
        if target is None:
            assert found == [], deal["Id"]
        else:
            assert len(found) == 1, (deal["Id"], found)  # no duplicate, none missing
            assert (found[0][0], found[0][2]) == (target, total)
    drafts = [i for i in state["stripe"].get("invoices", []) if i["status"] == "draft"]
    assert drafts == [], "a Stripe draft was left behind"


def test_sigkill_at_random_points_sqlite(tmp_path: Path) -> None:
    _crash_then_finish(tmp_path, f"sqlite:///{tmp_path / 'billsync.db'}")


@pytest.mark.postgres
def test_sigkill_at_random_points_postgres(tmp_path: Path, postgres_url: str) -> None:
    _crash_then_finish(tmp_path, postgres_url)
