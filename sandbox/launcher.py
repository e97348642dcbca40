"""Start `billsync sandbox serve` as a child process and talk to its admin API.

Used by the end-to-end tests, the benchmarks and `billsync demo`: each needs a sandbox
of its own on free ports, started and stopped cleanly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from billsync.sandbox import jsonutil

START_TIMEOUT_S = 30


class SandboxStartError(RuntimeError):
    pass


@dataclass
class SandboxHandle:
    info: dict[str, Any]
    config_path: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def admin_url(self) -> str:
        return str(self.info["admin_url"])

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(
            method, f"{self.admin_url}/_sandbox/{path.lstrip('/')}", json=body, timeout=30
        )
        response.raise_for_status()
        return jsonutil.loads(response.text)  # exact decimals, never float

    def state(self) -> dict[str, Any]:
        return dict(self.admin("GET", "state"))

    def calls(self) -> dict[str, Any]:
        return dict(self.admin("GET", "calls"))

    def reset_calls(self) -> None:
        self.admin("DELETE", "calls")

    def seed(self, data: dict[str, Any]) -> None:
        self.admin("POST", "seed", data)

    def faults(self, plan: dict[str, Any]) -> None:
        self.admin("POST", "faults", plan)


@contextmanager
def running_sandbox(
    workdir: Path,
    *,
    seed_file: Path | None = None,
    webhook_url: str | None = None,
    rate_limits: str = "off",
    profile: str = "single",
    extra_args: tuple[str, ...] = (),
) -> Iterator[SandboxHandle]:
    """A sandbox on free ports for the duration of the block; its log is kept in workdir.

    `profile="multi"` serves two QuickBooks companies and two Stripe accounts and writes
    the config as billsync connections (`billsync.sandbox.profiles`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ready = workdir / "sandbox-ready.json"
    config = workdir / "billsync.yaml"
    log_path = workdir / "sandbox.log"
    ready.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "billsync.sync.cli",
        "sandbox",
        "serve",
        "--port",
        "0",
        "--ready-file",
        str(ready),
        "--config-out",
        str(config),
        "--rate-limits",
        rate_limits,
        "--state-dir",
        str(workdir / "sandbox-state"),
        "--profile",
        profile,
    ]
    if seed_file:
        command += ["--seed", str(seed_file)]
    if webhook_url:
        command += ["--webhook-url", webhook_url]
    command += list(extra_args)
    with log_path.open("wb") as log:
        # Our own interpreter and arguments: nothing here comes from untrusted input.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        info = _wait_until_ready(process, ready, log_path)
        yield SandboxHandle(info, config, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(process: subprocess.Popen[bytes], ready: Path, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready.exists():
            return dict(json.loads(ready.read_text()))
        if process.poll() is not None:
            raise SandboxStartError(
                f"sandbox exited with {process.returncode}: {log.read_text()[-2000:]}"
            )
        time.sleep(0.05)
    raise SandboxStartError(f"sandbox not ready after {START_TIMEOUT_S}s; log: {log}")
