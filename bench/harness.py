"""What every scenario shares: sizes, tables, targets, the machine and RESULTS.md.

A scenario returns a `Section`: its tables (printed as they come and appended to
RESULTS.md with ``--record``), the conditions it ran under, notes, whether each target
was met and whether the run was *correct* (every deal invoiced exactly once). Only a
crash or an incorrect result fails the harness; a missed target is a finding, stated
plainly in the table.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sqlite3
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass(frozen=True)
class Sizes:
    """Deals per scenario. Full sizes follow issue 10 where the machine allows; where
    it does not (the large backlog), RESULTS.md says so and why."""

    calls_deals: int  # 1: API calls per deal (also 3's overhead and 6's first point)
    throughput_deals: int  # 2: mixed run under the vendors' limits and 50 ms latency
    throughput_qbo_deals: int  # 2: QuickBooks-only run, long enough to pass the window
    backlog_deals: int  # 4 and 6's second point: the large invoiced ledger
    scaleout_deals: int  # 7: the backlog the workers share
    scaleout_workers: tuple[int, ...]
    money_deals: int  # 8: invoiced, then some of each target's invoices change money
    money_changed: int  # 8: invoices changed per target


FULL = Sizes(
    calls_deals=10_000,
    throughput_deals=600,
    throughput_qbo_deals=2_400,
    backlog_deals=20_000,
    scaleout_deals=2_000,
    scaleout_workers=(1, 2, 4),
    money_deals=2_000,
    money_changed=300,
)
QUICK = Sizes(
    calls_deals=300,
    throughput_deals=40,
    throughput_qbo_deals=0,
    backlog_deals=600,
    scaleout_deals=200,
    scaleout_workers=(1, 2),
    money_deals=200,
    money_changed=25,
)


@dataclass
class Context:
    """Sizes, a scratch directory, and results shared between scenarios in one run
    (the 10k run serves scenarios 1, 3 and 6; the large backlog serves 4 and 6)."""

    sizes: Sizes
    workdir: Path
    quick: bool
    shared: dict[str, Any] = field(default_factory=dict)
    postgres_version: str | None = None

    def once(self, key: str, build: Callable[[], T]) -> T:
        if key not in self.shared:
            self.shared[key] = build()
        value: T = self.shared[key]
        return value


@dataclass
class Table:
    columns: Sequence[str]
    rows: list[Sequence[object]] = field(default_factory=list)
    title: str = ""

    def add(self, *cells: object) -> None:
        self.rows.append(cells)

    def markdown(self) -> str:
        lines = [f"**{self.title}**\n"] if self.title else []
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Section:
    number: int
    title: str
    conditions: str = ""
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    correct: bool = True
    """False when a run produced wrong results (missing or duplicate invoices…)."""
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def markdown(self) -> str:
        parts = [f"### {self.number}. {self.title}\n"]
        if self.conditions:
            parts.append(self.conditions + "\n")
        parts += [table.markdown() + "\n" for table in self.tables]
        parts += [f"- {note}" for note in self.notes]
        if self.problems:
            parts += [f"- **WRONG RESULT:** {problem}" for problem in self.problems]
        parts.append(f"\n_Scenario time: {self.seconds:.0f} s._\n")
        return "\n".join(parts)


def _cell(value: object) -> str:
    if isinstance(value, int | float):  # callers round; show what they kept
        return f"{value:,}"
    return str(value)


def per(count: float, of: float) -> float:  # money-ok: call and time ratios
    return count / of if of else 0.0


def ratio(reference: float, ours: float) -> str:
    """How many times fewer (or less) billsync needed than the reference."""
    return f"{reference / ours:.1f}×" if ours else "n/a"


def verdict(value: float, limit: float, *, at_most: bool = True) -> str:  # money-ok
    met = value <= limit if at_most else value >= limit
    return "met" if met else "**MISSED**"


def machine(postgres_version: str | None = None) -> str:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        ram = f", {kb / 1024 / 1024:.0f} GB RAM"
    text = (
        f"{platform.system()} {platform.machine()} ({model}), {os.cpu_count()} cores{ram}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    if postgres_version:
        text += f", PostgreSQL {postgres_version.split()[0]}"
    return text


PRODUCT_DIRS = ("connectors", "sync", "sandbox", "config", "mappings")
REPO = Path(__file__).resolve().parent.parent


def code_fingerprint(repo: Path = REPO) -> str:
    """A digest of every product source file's path, size and mtime: equal at the start
    and the end of a bench run means every scenario measured the same code."""
    digest = hashlib.sha256()
    for top in PRODUCT_DIRS:
        for path in sorted((repo / top).rglob("*.py")):
            stat = path.stat()
            digest.update(f"{path.relative_to(repo)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def code_note(repo: Path = REPO) -> str:
    """The commit and the product files with uncommitted changes (read-only git)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.rstrip("\n") if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown (no git)"
    changed = [
        line[3:]
        for line in git("status", "--porcelain", "--", *PRODUCT_DIRS).splitlines()
        if line[3:].endswith(".py")
    ]
    text = f"commit {commit}"
    if changed:
        text += f" + uncommitted changes to {', '.join(changed)}"
    return text


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return (
        f"load average at start {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} "
        "cores; the machine is shared with other work, so times are a floor, not a ceiling"
    )


def append_results(
    sections: Sequence[Section],
    *,
    command: str,
    started: datetime,
    elapsed_s: float,
    machine_text: str,
    load_text: str,
    code_text: str,
) -> None:
    header = (
        f"\n## Benchmark harness — {started:%Y-%m-%d %H:%M} UTC\n\n"
        f"Command: `{command}`  \nMachine: {machine_text}  \nLoad: {load_text}  \n"
        f"Code: {code_text}  \n"
        f"Total time: {elapsed_s / 60:.1f} min (finished {datetime.now(UTC):%H:%M} UTC)\n"
    )
    body = "\n".join(section.markdown() for section in sections)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(header + "\n" + body)
