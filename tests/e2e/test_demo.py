"""`billsync demo` as a newcomer runs it: exits 0 and prints the summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "billsync.sync.cli", "demo"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in out + result.stderr
    assert re.search(r"first run: \d+ deals read, [1-9]\d* invoices created", out)
    assert re.search(r"second run: .* [1-9]\d* payments applied", out)
    for text in (
        "invoices in QuickBooks",
        "invoices in Stripe",
        "Deals that need attention",
        "'Xero' is not a known billing platform",
        "Where to look next",
        "Paid",
    ):
        assert text in out, text
    workdir = Path(re.search(r"working in (\S+)", out).group(1))  # type: ignore[union-attr]
    assert workdir.is_relative_to(tmp_path) and (workdir / "billsync.log").exists()
    log = (workdir / "billsync.log").read_text()
    assert "sk_test_" not in log and "whsec_" not in log  # secrets never reach the log
