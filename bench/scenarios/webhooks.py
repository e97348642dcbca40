"""Scenario 5: webhook ingest — signed Stripe events durably stored by `billsync serve`.

The measurement is `bench.webhook_ingest` (also runnable alone): the real server as a
subprocess with its inbox worker running, a SQLite ledger, 32 concurrent keep-alive
clients posting unique signed `invoice.paid` events, and afterwards a count of distinct
inbox rows, so "durably stored" is checked rather than assumed. The clients run on the
same 2 cores as the server, so the figures include the load generator's own cost.
"""

from __future__ import annotations

from bench.harness import Context, Section, Table, verdict
from bench.webhook_ingest import CLIENT_PROCESSES, TARGET_EVENTS_PER_S, TARGET_P99_MS, measure

CLIENTS = 32
FULL_EVENTS = 5_000
QUICK_EVENTS = 400


def run(ctx: Context) -> Section:
    events = QUICK_EVENTS if ctx.quick else FULL_EVENTS
    workdir = ctx.workdir / "webhooks"
    workdir.mkdir(parents=True, exist_ok=True)
    outcome = measure(workdir, events, CLIENTS)
    section = Section(
        5,
        "Webhook ingest",
        conditions=(
            f"{events:,} unique signed Stripe `invoice.paid` events from {CLIENTS} clients "
            f"(threads over {CLIENT_PROCESSES} processes, one keep-alive connection each) "
            "to one `billsync serve` (one uvicorn worker, inbox worker running, SQLite "
            "ledger in WAL mode) on the same machine."
        ),
    )
    p50, p99 = outcome.percentile(0.50), outcome.percentile(0.99)
    table = Table(
        [
            "events",
            "errors",
            "durably stored",
            "events/s",
            "p50 ms",
            "p99 ms",
            "target",
            "vs target",
        ]
    )
    table.add(
        events,
        outcome.errors,
        outcome.stored,
        round(outcome.events_per_s),
        round(p50, 1),
        round(p99, 1),
        f"≥ {TARGET_EVENTS_PER_S}/s, p99 < {TARGET_P99_MS} ms",
        f"rate {verdict(outcome.events_per_s, TARGET_EVENTS_PER_S, at_most=False)}, "
        f"p99 {verdict(p99, TARGET_P99_MS)}",
    )
    section.tables.append(table)
    if outcome.errors or outcome.stored != events:
        section.correct = False
        section.problems.append(
            f"{outcome.errors} requests failed and {outcome.stored} of {events} events were "
            "stored: every event must be acknowledged and stored exactly once"
        )
    return section
