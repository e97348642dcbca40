"""The large invoiced ledger, built once per bench run, and scenario 4 on it.

Built honestly: billsync runs over a fresh sandbox holding the whole backlog until a
run creates nothing (scenario 6 takes the first run's peak RSS). Then the runs with
nothing changed (scenario 4):

- *right after the backlog*: the next routine run. The pull re-reads every deal whose
  SystemModstamp lies within ``salesforce.overlap_minutes`` (default 5) of the
  watermark — after a bulk write-back, that is every deal just written back;
- *steady state*: the sandbox clock is moved on 10 minutes, one deal gets a change
  billsync does not bill on (Opportunity.NextStep), a run syncs it (the watermark now
  lies past the bulk write-back), and the run after that is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.harness import Context, Section, Table, verdict
from bench.runner import RunResult, checked
from bench.scenarios.measure import SYSTEMS, Pass, billsync_pass, dataset
from bench.world import World, world

CALLS_TARGET = 3
WALL_TARGET_S = 2.0
CLOCK_STEP_S = 600


@dataclass
class Idle:
    label: str
    run: RunResult
    calls: dict[str, Any]

    @property
    def total(self) -> int:
        return sum(int(self.calls["totals"].get(s, 0)) for s in SYSTEMS)


@dataclass
class Backlog:
    build: Pass
    idle: list[Idle]


def backlog(ctx: Context) -> Backlog:
    def build() -> Backlog:
        with world(ctx.workdir, "backlog", dataset(ctx.sizes.backlog_deals)) as w:
            built = billsync_pass(w, "billsync")
            idle = [_idle(w, "right after the backlog was built")]
            change_one_deal_later(w)
            checked(w.run(), "backlog: syncing the one changed deal")
            idle.append(_idle(w, "steady state (watermark past the bulk write-back)"))
            return Backlog(built, idle)

    return ctx.once("backlog", build)


def _idle(w: World, label: str) -> Idle:
    w.reset_calls()
    result = checked(w.run(), f"backlog: idle run ({label})")
    return Idle(label, result, w.calls())


def change_one_deal_later(w: World) -> None:
    w.handle.admin("POST", "clock", {"advance_s": CLOCK_STEP_S})
    deal_id = next(iter(w.expected))
    w.handle.admin("PATCH", f"salesforce/Opportunity/{deal_id}", {"NextStep": "Thank-you call"})


def run(ctx: Context) -> Section:
    b = backlog(ctx)
    work = b.build.work
    section = Section(
        4,
        "Incremental cost: a run with nothing changed",
        conditions=(
            f"Ledger of {b.build.deals:,} invoiced deals (SQLite), built by billsync itself "
            f"in {work.wall_s / 60:.1f} min (first run; {len(b.build.runs)} runs in all, "
            f"sandbox start and seeding {b.build.build_s:.0f} s). Limits off, no latency. "
            "Wall = the whole `billsync run` process, start-up included; engine = the "
            "run's own duration_s."
        ),
    )
    table = Table(
        [
            "idle run",
            "deals re-read",
            "API calls",
            "by endpoint",
            "target calls",
            "calls vs target",
            "wall s",
            "engine s",
            "target wall",
            "wall vs target",
        ]
    )
    for idle in b.idle:
        endpoints = ", ".join(
            f"{system} {endpoint} {count}"
            for system, found in idle.calls["systems"].items()
            for endpoint, count in found.items()
        )
        table.add(
            idle.label,
            int(idle.run.summary.get("deals_seen", 0)),
            idle.total,
            endpoints,
            f"≤ {CALLS_TARGET}",
            verdict(idle.total, CALLS_TARGET),
            round(idle.run.wall_s, 2),
            float(idle.run.summary.get("duration_s", 0.0)),
            f"≤ {WALL_TARGET_S} s",
            verdict(idle.run.wall_s, WALL_TARGET_S),
        )
    section.tables.append(table)
    if not b.build.verdict.ok:
        section.correct = False
        section.problems.append(f"backlog build: {b.build.verdict.describe()}")
    else:
        section.notes.append(f"backlog correct: {b.build.verdict.describe()}.")
    writes = [
        idle.label
        for idle in b.idle
        if any(int(idle.run.summary.get(k, 0)) for k in ("invoices_created", "writebacks"))
    ]
    if writes:
        section.correct = False
        section.problems.append(f"idle runs wrote something: {', '.join(writes)}")
    return section
