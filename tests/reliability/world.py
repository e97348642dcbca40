"""Real processes for the reliability suites: `billsync run` and `billsync serve` as
subprocesses against a `billsync sandbox serve`, configured only through the
environment, the way an operator would (nothing is patched in the product)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from billsync.sandbox import jsonutil
from billsync.sandbox.launcher import SandboxHandle
from tests.server.live import free_port

COMMAND = [sys.executable, "-m", "billsync.sync.cli"]
LEASE_TTL_S = 3  # the smallest the settings allow: a killed run blocks the next ≤ 3 s


def billsync_env(ledger_url: str, **extra: str) -> dict[str, str]:
    """The environment of a billsync process in these suites: no BILLSYNC_ setting of
    the caller leaks in; the ledger, a short run lease, fast retries and no client-side
    throttling beyond what the sandbox enforces."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    env.update(
        {
            "BILLSYNC_LEDGER__URL": ledger_url,
            "BILLSYNC_SYNC__LEASE_TTL_SECONDS": str(LEASE_TTL_S),
            "BILLSYNC_RETRY__BASE_SECONDS": "1",
            "BILLSYNC_RETRY__CAP_SECONDS": "2",
            "BILLSYNC_STRIPE__RATE_LIMIT_PER_S": "200",
            "BILLSYNC_QUICKBOOKS__THROTTLE_WAIT_S": "1",
            "BILLSYNC_LOGGING__FORMAT": "json",
        }
    )
    env.update(extra)
    return env


@dataclass
class RunResult:
    code: int
    summary: dict[str, Any] | None
    stdout: str
    stderr: str
    finished_at: float = field(default_factory=time.monotonic)

    @property
    def created(self) -> int:
        return int((self.summary or {}).get("invoices_created", 0))

    @property
    def adopted(self) -> int:
        return int((self.summary or {}).get("invoices_adopted", 0))


def _summary(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict) and "run_id" in found:
            return found
    return None


def run(
    config: Path, env: Mapping[str, str], cwd: Path, *args: str, timeout: float = 600
) -> RunResult:
    """One `billsync run --json`, to the end."""
    done = subprocess.run(
        [*COMMAND, "run", "--json", "--config", str(config), *args],
        capture_output=True, text=True, env=dict(env), cwd=cwd, timeout=timeout, check=False,
    )  # fmt: skip
    return RunResult(done.returncode, _summary(done.stdout), done.stdout, done.stderr)


def start_run(
    config: Path, env: Mapping[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    """A `billsync run --json` in the background (to be killed, or raced)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [*COMMAND, "run", "--json", "--config", str(config)],
            env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def billsync(
    env: Mapping[str, str], cwd: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, env=dict(env), cwd=cwd,
        timeout=timeout, check=False,
    )  # fmt: skip


def kill(process: subprocess.Popen[bytes]) -> bool:
    """SIGKILL if still running; True when the kill landed (the process was alive)."""
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return True


def run_until_done(
    config: Path,
    env: Mapping[str, str],
    cwd: Path,
    *,
    max_runs: int,
    done: Callable[[RunResult], bool] | None = None,
) -> list[RunResult]:
    """Repeat `billsync run` (as cron would) until a run has nothing left to create or
    retry; every result is returned so callers can check the exit codes."""
    results: list[RunResult] = []
    finished = done or (lambda r: r.created == 0 and r.adopted == 0 and r.code in (0, 1))
    for _ in range(max_runs):
        result = run(config, env, cwd)
        results.append(result)
        if result.code == 3:
            time.sleep(LEASE_TTL_S + 0.2)
            continue
        if result.summary is not None and finished(result):
            break
        time.sleep(1.1)  # retries are due after RETRY__BASE_SECONDS
    return results


# --- billsync serve ------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    stopped_code: int | None = field(default=None)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stopped_code = self.process.returncode
        return self.stopped_code

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_serve(
    config: Path, env: Mapping[str, str], cwd: Path, *extra: str, port: int | None = None
) -> Server:
    port = port or free_port()
    log_path = cwd / f"serve-{port}.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [*COMMAND, "serve", "--config", str(config), "--host", "127.0.0.1",
             "--port", str(port), *extra],
            env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"billsync serve did not become ready: {server.log()[-3000:]}")
        time.sleep(0.1)


# --- sandbox data ----------------------------------------------------------------------


def write_seed(path: Path, seed: dict[str, Any]) -> Path:
    path.write_text(jsonutil.dumps(seed), encoding="utf-8")
    return path


def seed_more(handle: SandboxHandle, data: dict[str, Any]) -> None:
    """Add records to a running sandbox (exact decimals, which `handle.seed` cannot send)."""
    response = requests.post(
        f"{handle.admin_url}/_sandbox/seed",
        data=jsonutil.dumps(data),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    response.raise_for_status()


def won_deals(seed: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in seed["salesforce"]["Opportunity"] if d["StageName"] == "Closed Won"]


def config_secrets(handle: SandboxHandle) -> dict[str, str]:
    """The credentials the sandbox made up for this run, by name (all random or
    distinctive), from its ready info."""
    info = handle.info
    names = [
        k
        for k in info
        if any(w in k for w in ("secret", "key", "token", "password"))
        and not k.endswith(("_url", "_file", "_id"))
    ]
    return {k: str(info[k]) for k in names if isinstance(info[k], str) and len(info[k]) >= 8}


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def ledger_rows(ledger_url: str, table: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM {table}")).mappings().all()
        return [dict(r) for r in rows]
    finally:
        engine.dispose()
