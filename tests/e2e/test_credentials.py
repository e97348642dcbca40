"""Wrong or revoked credentials for any connector exit 2 (issue 16), and a QuickBooks
grant refused during a run shows in `billsync auth quickbooks --status` (exit 2,
reconnect) until the company is connected again. `billsync run` and the sandbox as
subprocesses."""

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

pytestmark = pytest.mark.slow


def billsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "billsync.sync.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False,
    )  # fmt: skip


def config(handle: SandboxHandle, tmp_path: Path, **sections: dict[str, Any]) -> Path:
    data = yaml.safe_load(handle.config_path.read_text(encoding="utf-8"))
    data["ledger"]["url"] = f"sqlite:///{tmp_path / 'ledger.db'}"
    for name, values in sections.items():
        data[name].update(values)
    out = tmp_path / "billsync.yaml"
    out.write_text(yaml.safe_dump(data), encoding="utf-8")
    return out


@pytest.fixture
def sandbox(tmp_path: Path) -> Any:
    seed = generate_seed(GenerateOptions(deals=16, random_seed=4))
    (tmp_path / "seed.json").write_text(jsonutil.dumps(seed))
    with running_sandbox(tmp_path / "sb", seed_file=tmp_path / "seed.json") as handle:
        yield handle


def test_a_bad_stripe_key_exits_2_even_when_quickbooks_worked(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    path = config(sandbox, tmp_path, stripe={"api_key": "sk_test_not_a_real_key"})
    result = billsync("run", "--json", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "Stripe refused the API key" in summary["stopped"]["stripe"]
    assert "sk_test_not_a_real_key" not in result.stdout + result.stderr


def test_a_revoked_quickbooks_grant_exits_2_and_status_says_reconnect(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    path = config(sandbox, tmp_path)
    first = billsync("run", "--json", "--config", str(path), cwd=tmp_path)
    assert first.returncode in (0, 1), first.stderr[-2000:]
    healthy = billsync("auth", "quickbooks", "--status", "--config", str(path), cwd=tmp_path)
    assert healthy.returncode in (0, 1), healthy.stderr
    sandbox.admin("POST", "quickbooks/oauth/revoke", {})  # the user disconnected the app
    sandbox.admin("POST", "quickbooks/oauth/expire_access_tokens", {})
    refused = billsync("run", "--json", "--config", str(path), cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "quickbooks" in json.loads(refused.stdout.strip().splitlines()[-1])["stopped"]
    status = billsync("auth", "quickbooks", "--status", "--config", str(path), cwd=tmp_path)
    assert status.returncode == 2, status.stdout + status.stderr
    assert "invalid_grant" in status.stderr and "reconnect" in status.stderr
    report = billsync(
        "auth", "quickbooks", "--status", "--json", "--config", str(path), cwd=tmp_path
    )
    assert json.loads(report.stdout)["refused_by_run"]["message"]
