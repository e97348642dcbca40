"""Scenario 2: invoices per minute under the vendors' rate limits and 50 ms latency.

The sandbox enforces the vendors' real limits (``--rate-limits real``, i.e. K = 1) and
delays every call by 50 ms. K stays 1 on purpose: billsync paces itself with
client-side budgets equal to the vendors' real limits (QuickBooks' are capped there by
its settings), so a sandbox K times more lenient would only measure billsync against a
ceiling it is configured never to use. The runs stay short anyway: at 50 ms a call,
per-deal work is latency-bound long before the limits bind, except on QuickBooks'
batch budget, which the QuickBooks-only run (full mode) is sized to pass through
several 60 s windows.

Both pipelines keep their production settings: billsync's Stripe budget is the
default for test keys (25/s); the reference has no client-side limiter and waits out
429s.
"""

from __future__ import annotations

from fractions import Fraction

from bench import ceilings
from bench.harness import Context, Section, Table, per, verdict
from bench.scenarios.measure import Pass, billsync_pass, dataset, reference_pass
from bench.world import World, world

LATENCY_MS = 50
TARGET_SHARE = 0.9


def _new_customers(w: World, target: str) -> int:
    return len({e.account_id for e in w.expected.values() if e.target == target})


def _ceiling(w: World, qbo_share: float) -> tuple[float, float, float]:  # money-ok
    invoices = {
        t: sum(1 for e in w.expected.values() if e.target == t) for t in ("quickbooks", "stripe")
    }
    qbo = ceilings.quickbooks_per_min(invoices["quickbooks"], _new_customers(w, "quickbooks"))
    stripe = ceilings.stripe_per_min(invoices["stripe"], _new_customers(w, "stripe"))
    return qbo, stripe, ceilings.mixed_per_min(qbo, stripe, qbo_share)


def _per_min(p: Pass) -> float:  # money-ok: a rate
    return per(p.work.created, p.work.wall_s) * 60


def run(ctx: Context) -> Section:
    options = dataset(ctx.sizes.throughput_deals)
    limits = {"rate_limits": "real", "latency_ms": LATENCY_MS, "stripe_rate": None}
    with world(ctx.workdir, "throughput-billsync", options, **limits) as w:  # type: ignore[arg-type]
        qbo_ceiling, stripe_ceiling, ceiling = _ceiling(w, 0.5)
        ours = billsync_pass(w, "billsync")
    with world(ctx.workdir, "throughput-reference", options, **limits) as w:  # type: ignore[arg-type]
        ref = reference_pass(w, "reference")
    section = Section(
        2,
        "Throughput under the vendors' limits",
        conditions=(
            f"Sandbox `--rate-limits real` (K = 1) and {LATENCY_MS} ms on every call; "
            f"{ours.deals:,} deals, half to each target. Invoices/min = invoices created by "
            "the first run / its wall time (process start to exit)."
        ),
    )
    mine, theirs = _per_min(ours), _per_min(ref)
    table = Table(
        [
            "run",
            "invoices",
            "wall s",
            "invoices/min",
            "ceiling/min",
            "share of ceiling",
            "target",
            "vs target",
        ]
    )
    share = per(mine, ceiling)
    table.add(
        "billsync, mixed",
        ours.work.created,
        round(ours.work.wall_s, 1),
        round(mine, 1),
        round(ceiling, 1),
        f"{share:.0%}",
        f"≥ {TARGET_SHARE:.0%}",
        verdict(share, TARGET_SHARE, at_most=False),
    )
    table.add(
        "reference, mixed",
        ref.work.created,
        round(ref.work.wall_s, 1),
        round(theirs, 1),
        round(ceiling, 1),
        f"{per(theirs, ceiling):.0%}",
        "",
        "",
    )
    table.add("billsync ÷ reference", "", "", f"{per(mine, theirs):.1f}×", "", "", "", "")
    section.tables.append(table)
    section.notes.append(
        f"Ceilings from the limits (bench/ceilings.py): QuickBooks {qbo_ceiling:,.0f}/min, "
        f"Stripe {stripe_ceiling:,.0f}/min for this dataset's customer mix; half the "
        f"deals each, so the mixed ceiling is {ceiling:,.0f}/min (Stripe-bound)."
    )
    if ctx.sizes.throughput_qbo_deals:
        _quickbooks_only(ctx, section)
    for p in (ours, ref):
        if not p.verdict.ok:
            section.correct = False
            section.problems.append(f"{p.label}: {p.verdict.describe()}")
    return section


def _quickbooks_only(ctx: Context, section: Section) -> None:
    options = dataset(ctx.sizes.throughput_qbo_deals, quickbooks_share=Fraction(1))
    limits = {"rate_limits": "real", "latency_ms": LATENCY_MS, "stripe_rate": None}
    with world(ctx.workdir, "throughput-quickbooks", options, **limits) as w:  # type: ignore[arg-type]
        qbo_ceiling, _, _ = _ceiling(w, 1.0)
        ours = billsync_pass(w, "billsync, QuickBooks only")
    created, wall = ours.work.created, ours.work.wall_s
    window = ceilings.window_ceiling(wall)
    share = per(created, window)
    table = Table(
        [
            "run",
            "invoices",
            "wall s",
            "invoices/min",
            "most the 60 s window allows in that time",
            "share",
            "batch calls",
            "target",
            "vs target",
        ],
        title="QuickBooks only: the batch budget over several windows",
    )
    table.add(
        "billsync",
        created,
        round(wall, 1),
        round(per(created, wall) * 60, 1),
        window,
        f"{share:.0%}",
        ours.batch_calls(),
        f"≥ {TARGET_SHARE:.0%}",
        verdict(share, TARGET_SHARE, at_most=False),
    )
    section.tables.append(table)
    section.notes.append(
        f"QuickBooks-only: {created:,} invoices; steady-state ceiling {qbo_ceiling:,.0f}/min. "
        f"billsync spent {ours.batch_calls()} batch calls ({created / 30:.0f} would carry the "
        "invoices alone; customers created in batches spend the rest of the 40-a-minute budget)."
    )
    if not ours.verdict.ok:
        section.correct = False
        section.problems.append(f"QuickBooks-only: {ours.verdict.describe()}")
