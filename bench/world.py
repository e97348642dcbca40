"""A benchmark world: a dataset, a fresh sandbox seeded with it, and billsync's config.

Each measured pipeline gets its own world (same dataset options, same random seed, so
the same deals): billsync and the reference never share a sandbox, a ledger or a
QuickBooks refresh token.

"Limits off" means the sandbox enforces none and billsync's Stripe client budget is
raised to its maximum (``stripe.rate_limit_per_s: 1000``): otherwise billsync would pace
itself at Stripe's 25 requests/s for test keys against a sandbox that does not care.
billsync's QuickBooks budgets cannot be raised (its settings cap them at Intuit's real
500 requests and 40 batch requests a minute), so they stay in force everywhere.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.dataset import DatasetOptions, Expected, bench_seed, expected_invoices
from bench.runner import RunResult, checked, run_billsync, run_measured, write_config
from bench.verify import Verdict, verify
from billsync.sandbox import jsonutil
from billsync.sandbox.launcher import SandboxHandle, running_sandbox

REPO = Path(__file__).resolve().parent.parent
STRIPE_MAX_RATE = 1000
MAX_RUNS = 4


@dataclass
class World:
    name: str
    workdir: Path
    handle: SandboxHandle
    config: Path
    expected: dict[str, Expected]
    build_s: float

    @property
    def deals(self) -> int:
        return len(self.expected)

    def calls(self) -> dict[str, Any]:
        return self.handle.calls()

    def reset_calls(self) -> None:
        self.handle.reset_calls()

    def verify(self) -> Verdict:
        return verify(self.handle.state(), self.expected)

    def sandbox_cpu_s(self) -> float:
        times = psutil.Process(self.handle.process.pid).cpu_times()
        return float(times.user + times.system)  # money-ok: seconds

    def run(self, *extra: str) -> RunResult:
        return run_billsync(self.config, self.workdir, *extra)

    def run_until_done(self) -> list[RunResult]:
        """billsync runs until one creates nothing (at most `MAX_RUNS`): the work and
        the run that finds none left."""
        results: list[RunResult] = []
        for attempt in range(MAX_RUNS):
            result = checked(self.run(), f"{self.name}: run {attempt + 1}")
            results.append(result)
            if result.created == 0:
                break
        return results

    def run_reference(self) -> RunResult:
        """The per-record reference pipeline over this world, in a fresh child."""
        return run_measured("bench.reference", ["--config", str(self.config)], REPO)


@contextmanager
def world(
    root: Path,
    name: str,
    options: DatasetOptions,
    *,
    rate_limits: str = "off",
    latency_ms: int = 0,
    ledger_url: str | None = None,
    stripe_rate: int | None = STRIPE_MAX_RATE,
    stripe: Mapping[str, Any] | None = None,
) -> Iterator[World]:
    """A fresh sandbox seeded with ``options``' deals, and a config pointing at it
    (``stripe``: more Stripe settings, e.g. another delivery mode)."""
    workdir = root / name
    # A ledger left by an earlier bench run in the same directory would make every
    # deal look invoiced already: each world starts from nothing.
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    started = time.monotonic()
    seed = bench_seed(options)
    seed_file = workdir / "seed.json"
    seed_file.write_text(jsonutil.dumps(seed), encoding="utf-8")
    with running_sandbox(
        workdir / "sandbox", seed_file=seed_file, rate_limits=rate_limits
    ) as handle:
        overrides: dict[str, Any] = {}
        stripe_settings = dict(stripe or {})
        if stripe_rate is not None:
            stripe_settings["rate_limit_per_s"] = stripe_rate
        if stripe_settings:
            overrides["stripe"] = stripe_settings
        if ledger_url is not None:
            overrides["ledger"] = {"url": ledger_url}
        config = write_config(handle.config_path, workdir / "billsync.yaml", overrides)
        if latency_ms:
            handle.faults({"latency_ms": latency_ms})
        handle.reset_calls()
        yield World(
            name=name,
            workdir=workdir,
            handle=handle,
            config=config,
            expected=expected_invoices(seed),
            build_s=time.monotonic() - started,
        )
