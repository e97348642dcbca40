"""One measured pass of a pipeline over a fresh world: runs, calls, time, correctness.

`billsync_pass` runs billsync until a run creates nothing (the work, then the run that
finds none left) and `reference_pass` runs the reference pipeline the same way; both
count the calls the sandbox saw over all their runs, so each pays for its own
"anything left?" run. Scenarios 1, 3 and 6 share the billsync pass at scenario 1's size
(`Context.once`), so a full bench run does that work once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from bench.dataset import DatasetOptions
from bench.harness import Context
from bench.runner import RunFailed, RunResult
from bench.verify import Verdict
from bench.world import World, world

SYSTEMS = ("salesforce", "quickbooks", "stripe")
RANDOM_SEED = 10


@dataclass
class Pass:
    label: str
    deals: int
    invoices: dict[str, int]
    """Invoices the dataset asks for, per target."""
    runs: list[RunResult]
    calls: dict[str, int]
    endpoints: dict[str, dict[str, int]]
    first_run_calls: dict[str, int]
    verdict: Verdict
    sandbox_cpu_s: float
    build_s: float

    @property
    def work(self) -> RunResult:
        """The run that did the work (the first)."""
        return self.runs[0]

    def total_calls(self) -> int:
        return sum(self.calls.get(s, 0) for s in SYSTEMS)

    def batch_calls(self) -> int:
        return int(self.endpoints.get("quickbooks", {}).get("POST batch", 0))


def dataset(deals: int, quickbooks_share: Fraction = Fraction(1, 2)) -> DatasetOptions:
    return DatasetOptions(deals=deals, random_seed=RANDOM_SEED, quickbooks_share=quickbooks_share)


def _targets(w: World) -> dict[str, int]:
    counts = {"quickbooks": 0, "stripe": 0}
    for expected in w.expected.values():
        counts[expected.target] += 1
    return counts


def _totals(snapshot: Mapping[str, Any]) -> dict[str, int]:
    return {system: int(snapshot["totals"].get(system, 0)) for system in SYSTEMS}


def billsync_pass(w: World, label: str) -> Pass:
    cpu_before = w.sandbox_cpu_s()
    w.reset_calls()
    first = w.run()
    if not first.summary or first.exit_code not in (0, 1):
        raise RunFailed(f"{label}: billsync exited {first.exit_code}: {first.stderr_tail[-1500:]}")
    first_calls = _totals(w.calls())
    runs = [first]
    if first.created:
        runs += w.run_until_done()
    return _finish(w, label, runs, first_calls, cpu_before)


def reference_pass(w: World, label: str) -> Pass:
    cpu_before = w.sandbox_cpu_s()
    w.reset_calls()
    runs = [w.run_reference()]
    first_calls = _totals(w.calls())
    if not runs[0].summary:
        raise RunFailed(f"{label}: the reference crashed: {runs[0].stderr_tail[-1500:]}")
    runs.append(w.run_reference())  # a re-run must find nothing left to do
    return _finish(w, label, runs, first_calls, cpu_before)


def _finish(
    w: World, label: str, runs: list[RunResult], first_calls: dict[str, int], cpu_before: float
) -> Pass:
    snapshot = w.calls()
    return Pass(
        label=label,
        deals=w.deals,
        invoices=_targets(w),
        runs=runs,
        calls=_totals(snapshot),
        endpoints={s: dict(e) for s, e in snapshot["systems"].items()},
        first_run_calls=first_calls,
        verdict=w.verify(),
        sandbox_cpu_s=w.sandbox_cpu_s() - cpu_before,
        build_s=w.build_s,
    )


def mixed_billsync(ctx: Context) -> Pass:
    """billsync over scenario 1's dataset, limits off, no latency (shared by 1, 3, 6)."""

    def build() -> Pass:
        with world(ctx.workdir, "mixed-billsync", dataset(ctx.sizes.calls_deals)) as w:
            return billsync_pass(w, "billsync")

    return ctx.once("mixed-billsync", build)


def stripe_emails_billsync(ctx: Context) -> Pass:
    """billsync over the Stripe half of scenario 1's dataset (same count of Stripe
    invoices, no QuickBooks deals) with ``stripe.delivery: stripe_emails``."""

    def build() -> Pass:
        options = dataset(ctx.sizes.calls_deals // 2, quickbooks_share=Fraction(0))
        stripe = {"delivery": "stripe_emails"}
        with world(ctx.workdir, "stripe-emails-billsync", options, stripe=stripe) as w:
            return billsync_pass(w, "billsync (stripe.delivery: stripe_emails)")

    return ctx.once("stripe-emails-billsync", build)


def mixed_reference(ctx: Context) -> Pass:
    """The reference over the same dataset in its own sandbox (shared by 1 and 3)."""

    def build() -> Pass:
        with world(ctx.workdir, "mixed-reference", dataset(ctx.sizes.calls_deals)) as w:
            return reference_pass(w, "reference")

    return ctx.once("mixed-reference", build)
