"""Scenario 3: engine overhead — CPU seconds of `billsync run` per 1,000 deals.

The run that does scenario 1's work (sandbox limits off, no latency), measured from the
outside: user + system CPU of the child, from its own ``getrusage`` at exit. deals/s is
end to end (process start to exit). The QuickBooks client-side budget (40 batch calls
a minute, not configurable above Intuit's real limit) stays in force, so wall time can
be bounded by it rather than by CPU; the table says how long that budget alone needs
for the run's batch calls. The reference's figures are shown for scale.
"""

from __future__ import annotations

from bench.harness import Context, Section, Table, per, verdict
from bench.scenarios.measure import mixed_billsync, mixed_reference

CPU_TARGET_S = 2.0  # per 1,000 deals
QBO_BATCHES_PER_MINUTE = 40


def qbo_budget_floor_s(batch_calls: int) -> float:
    """Shortest time a client that keeps to 40 batch calls in any 60 s can make them."""
    if batch_calls <= QBO_BATCHES_PER_MINUTE:
        return 0.0
    return 60.0 * ((batch_calls - 1) // QBO_BATCHES_PER_MINUTE)


def run(ctx: Context) -> Section:
    ours = mixed_billsync(ctx)
    ref = mixed_reference(ctx)
    work = ours.work
    section = Section(
        3,
        "Engine overhead",
        conditions=(
            f"{ours.deals:,} deals (scenario 1's first billsync run), sandbox limits off, "
            "no latency, SQLite ledger. CPU = user + system of the `billsync run` process."
        ),
    )
    cpu_per_k = per(work.cpu_s, ours.deals) * 1000
    table = Table(["measure", "billsync", "reference", "target", "billsync vs target"])
    table.add(
        "CPU s per 1,000 deals",
        round(cpu_per_k, 2),
        round(per(ref.work.cpu_s, ref.deals) * 1000, 2),
        f"≤ {CPU_TARGET_S}",
        verdict(cpu_per_k, CPU_TARGET_S),
    )
    table.add("CPU ms per deal", round(per(work.cpu_s, ours.deals) * 1000, 2), "", "≤ 2", "")
    table.add(
        "deals/s end to end",
        round(per(ours.deals, work.wall_s), 1),
        round(per(ref.deals, ref.work.wall_s), 1),
        "",
        "",
    )
    table.add("wall s", round(work.wall_s, 1), round(ref.work.wall_s, 1), "", "")
    table.add(
        "sandbox CPU s (all runs)",
        round(ours.sandbox_cpu_s, 1),
        round(ref.sandbox_cpu_s, 1),
        "",
        "",
    )
    floor = qbo_budget_floor_s(ours.batch_calls())
    table.add(
        "QuickBooks batch calls / time the 40-a-minute budget alone needs",
        f"{ours.batch_calls()} / {floor:.0f} s",
        "0 (no batches)",
        "",
        "",
    )
    section.tables.append(table)
    if floor and floor > 0.8 * work.wall_s:
        section.notes.append(
            "Wall time was bounded by billsync's own QuickBooks batch budget "
            f"({ours.batch_calls()} batch calls need ≥ {floor:.0f} s at 40 a minute), "
            "not by CPU: deals/s here is a QuickBooks-budget figure."
        )
    return section
