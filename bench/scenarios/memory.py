"""Scenario 6: peak RSS of `billsync run` as the backlog grows.

The first run over scenario 1's dataset and the first run over the large backlog, each
a fresh child process: peak RSS is the larger of psutil samples every 250 ms and the
child's own ``ru_maxrss`` at exit (why not RUSAGE_CHILDREN: see `bench.runner`). A
line through the two points gives the growth per 1,000 deals and, where 100,000 deals
were not run and the growth is larger than run-to-run noise, a projection to 100,000 —
labelled as such, never as a measurement.
"""

from __future__ import annotations

from bench.harness import Context, Section, Table, verdict
from bench.scenarios.backlog import backlog
from bench.scenarios.measure import mixed_billsync

MB = 1024 * 1024
RSS_TARGET_MB = 250
# Peak RSS of identical 300-deal runs differed by up to ~30 MB on this machine (115 and
# 151 MB); smaller differences between two runs are noise, not growth.
NOISE_MB = 30
TARGET_DEALS = 100_000


def _quarters(timeline: list[tuple[float, int]]) -> str:
    """RSS (sampled) at a quarter, half, three quarters and the end of the run."""
    if not timeline:
        return "n/a"
    end = timeline[-1][0]
    picks = []
    for share in (0.25, 0.5, 0.75, 1.0):
        at = next((rss for t, rss in timeline if t >= share * end), timeline[-1][1])
        picks.append(f"{at / MB:.0f}")
    return " / ".join(picks)


def run(ctx: Context) -> Section:
    small = mixed_billsync(ctx)
    large = backlog(ctx).build
    points = [
        (small.deals, small.work.peak_rss_bytes / MB),
        (large.deals, large.work.peak_rss_bytes / MB),
    ]
    section = Section(
        6,
        "Memory: peak RSS of a run",
        conditions=(
            "First `billsync run` over each backlog (the one that invoices everything), "
            "SQLite ledger, limits off, no latency."
        ),
    )
    table = Table(
        [
            "deals",
            "peak RSS MB",
            "RSS at 25 / 50 / 75 / 100 % of the run, MB",
            "target",
            "vs target",
        ]
    )
    for (deals, rss), p in zip(points, (small, large), strict=True):
        table.add(deals, round(rss, 1), _quarters(p.work.rss_timeline), "", "")
    (n1, r1), (n2, r2) = points
    slope = (r2 - r1) / (n2 - n1) if n2 != n1 else 0.0
    if n2 >= TARGET_DEALS:
        table.add(
            f"{n2:,} (measured)", round(r2, 1), "", f"≤ {RSS_TARGET_MB}", verdict(r2, RSS_TARGET_MB)
        )
    elif abs(r2 - r1) <= NOISE_MB:
        table.add(f"{TARGET_DEALS:,}", "not run", f"≤ {RSS_TARGET_MB}", "not measured")
    else:
        projected = r2 + slope * (TARGET_DEALS - n2)
        table.add(
            f"{TARGET_DEALS:,} (straight-line projection)",
            round(projected, 1),
            "",
            f"≤ {RSS_TARGET_MB}",
            verdict(projected, RSS_TARGET_MB) + " (projected)",
        )
    section.tables.append(table)
    if abs(r2 - r1) <= NOISE_MB:
        section.notes.append(
            f"From {n1:,} to {n2:,} deals ({n2 / n1:.1f}× the deals) peak RSS moved "
            f"{r2 - r1:+.1f} MB, within the ±{NOISE_MB} MB that identical runs differ by on "
            "this machine: flat in N over this range; nothing is projected from noise."
        )
    else:
        section.notes.append(
            f"From {n1:,} to {n2:,} deals ({n2 / n1:.1f}× the deals) peak RSS moved "
            f"{r2 - r1:+.1f} MB ({slope * 1000:+.2f} MB per 1,000 deals), more than the "
            f"±{NOISE_MB} MB that identical runs differ by: not flat in N."
        )
    for p in (small, large):
        if not p.verdict.ok:
            section.correct = False
            section.problems.append(f"{p.deals} deals: {p.verdict.describe()}")
    return section
