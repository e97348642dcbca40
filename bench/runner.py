"""Run `billsync run --json` as a child process and measure it from the outside.

A fresh child per run, watched by psutil: wall time, CPU seconds (user + system of the
child and anything it started) and peak RSS, sampled every `SAMPLE_S`. psutil rather
than ``getrusage(RUSAGE_CHILDREN)``: ``ru_maxrss`` of RUSAGE_CHILDREN is the largest
RSS of *any* child ever waited for by this process — the sandbox, the reference
pipeline and earlier runs included — so it is only meaningful for the first child, and
CPU deltas would mix in every other child that ends in between (workers run side by
side in the scale-out scenario). The sampled peak can miss a spike shorter than the
sampling interval; the child's own ``ru_maxrss`` cannot, so the child reports it and
its exact CPU seconds as it exits (`USAGE_HOOK`); the samples are the fallback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import yaml

SAMPLE_S = 0.25
RUN_TIMEOUT_S = 4 * 3600
# Runs a module as ``python -m`` would and, when it exits (whatever the exit code),
# prints the child's own ru_maxrss (kB on Linux) and CPU seconds to stderr.
USAGE_HOOK = (
    "import atexit, resource, runpy, sys\n"
    "def report():\n"
    "    u = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    print('bench.usage %d %.3f' % (u.ru_maxrss, u.ru_utime + u.ru_stime), file=sys.stderr)\n"
    "atexit.register(report)\n"
    "module = sys.argv[1]\n"
    "sys.argv = [module, *sys.argv[2:]]\n"
    "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
)


@dataclass
class RunResult:
    exit_code: int
    summary: dict[str, Any]
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    stderr_tail: str = ""
    rss_timeline: list[tuple[float, int]] = field(default_factory=list)
    """(seconds since start, RSS bytes) every `SAMPLE_S`: where in the run memory grows."""

    @property
    def created(self) -> int:
        return int(self.summary.get("invoices_created", 0)) + int(
            self.summary.get("invoices_adopted", 0)
        )


def write_config(base: Path, out: Path, overrides: dict[str, Any]) -> Path:
    """The sandbox's billsync config with ``overrides`` merged in, section by section."""
    config = yaml.safe_load(base.read_text(encoding="utf-8"))
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    out.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return out


def billsync_env() -> dict[str, str]:
    # The config file is the whole configuration: no BILLSYNC_* from the caller's shell.
    return {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}


class _Sampler(threading.Thread):
    """Peak RSS and last CPU times of a process tree, sampled until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak_rss = 0
        self.cpu_s = 0.0  # money-ok: seconds
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.timeline: list[tuple[float, int]] = []

    def _sample(self) -> None:
        tree = [self.process, *self.process.children(recursive=True)]
        rss = cpu = 0.0  # money-ok: bytes and seconds
        for proc in tree:
            try:
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                cpu += times.user + times.system
            except psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, int(rss))
        self.cpu_s = max(self.cpu_s, cpu)
        self.timeline.append((time.monotonic() - self.started, int(rss)))

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._sample()
            except psutil.Error:
                return
            self.stop.wait(SAMPLE_S)


def run_billsync(
    config: Path, cwd: Path, *extra: str, timeout_s: float = RUN_TIMEOUT_S
) -> RunResult:
    """One `billsync run --json --config CONFIG` in a fresh child, measured."""
    return run_measured(
        "billsync.sync.cli", ["run", "--json", "--config", str(config), *extra], cwd, timeout_s
    )


def run_measured(
    module: str, args: list[str], cwd: Path, timeout_s: float = RUN_TIMEOUT_S
) -> RunResult:
    """``python -m MODULE ARGS`` in a fresh child, measured; its summary is the last JSON
    line it prints."""
    command = [sys.executable, "-c", USAGE_HOOK, module, *args]
    started = time.monotonic()
    # Our own interpreter and arguments only.
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=billsync_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = _Sampler(process.pid)
    sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    finally:
        sampler.stop.set()
        sampler.join()
    wall = time.monotonic() - started
    peak, cpu = sampler.peak_rss, sampler.cpu_s
    for line in stderr.splitlines():
        if line.startswith("bench.usage "):
            max_rss_kb, cpu_text = line.split()[1:3]
            peak = max(peak, int(max_rss_kb) * 1024)
            cpu = float(cpu_text)  # money-ok: seconds
    summary = _summary(stdout)
    return RunResult(
        exit_code=process.returncode,
        summary=summary,
        wall_s=wall,
        cpu_s=cpu,
        peak_rss_bytes=peak,
        stderr_tail=stderr[-3000:],
        rss_timeline=sampler.timeline,
    )


def _summary(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                return dict(json.loads(line))
            except ValueError:
                continue
    return {}


class RunFailed(RuntimeError):
    """billsync crashed or printed no summary: the scenario cannot be measured."""


def checked(result: RunResult, what: str) -> RunResult:
    """The result, or RunFailed when the run crashed (no summary, a traceback, exit 2)."""
    if not result.summary or result.exit_code not in (0, 1):
        raise RunFailed(
            f"{what}: billsync run exited {result.exit_code} with no usable summary; "
            f"stderr ends: {result.stderr_tail[-1500:]}"
        )
    return result
