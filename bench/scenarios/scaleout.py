"""Scenario 7: 1, 2 and 4 `billsync run` workers sharing one PostgreSQL ledger.

The backlog bills in Stripe only: with limits off, the one budget billsync cannot
switch off is QuickBooks' 40 batch calls a minute per company, which every worker
shares — a mixed backlog would cap every worker count at the same QuickBooks rate and
hide whatever the workers add.

For each worker count: a fresh sandbox with the backlog (same dataset), a fresh
database on the server (`bench.postgres`), the schema migrated once (`billsync
migrate`, as a deployment would before starting workers), then the workers start
together. Each worker repeats `billsync run` as a cron job would: a run that finds the
lease held (exit 3) is repeated after a short pause; a worker stops after a run that
created nothing. Throughput = backlog / time until the last run that created an
invoice ended. Duplicates are counted in the sandbox: live invoices per deal.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

from bench.harness import Context, Section, Table, per
from bench.postgres import fresh_database, postgres_server, server_version
from bench.runner import RunResult, billsync_env
from bench.scenarios.measure import dataset
from bench.verify import invoices_per_deal
from bench.world import REPO, World, world

LEASE_RETRY_S = 5.0
EXIT_LEASE_HELD = 3
WORKER_DEADLINE_S = 3 * 3600


@dataclass
class Worker:
    number: int
    runs: list[tuple[float, RunResult]] = field(default_factory=list)
    error: str | None = None

    @property
    def lease_refusals(self) -> int:
        return sum(1 for _, r in self.runs if r.exit_code == EXIT_LEASE_HELD)

    @property
    def created(self) -> int:
        return sum(r.created for _, r in self.runs if r.summary)


@dataclass
class Outcome:
    workers: list[Worker]
    seconds: float
    per_deal: Counter[int]
    correct: bool
    description: str


def _work(w: World, worker: Worker, started: float) -> None:
    deadline = started + WORKER_DEADLINE_S
    while time.monotonic() < deadline:
        result = w.run()
        worker.runs.append((time.monotonic() - started, result))
        if result.exit_code == EXIT_LEASE_HELD:
            time.sleep(LEASE_RETRY_S)
            continue
        if not result.summary or result.exit_code not in (0, 1):
            worker.error = f"exit {result.exit_code}: {result.stderr_tail[-800:]}"
            return
        if result.created == 0:
            return
    worker.error = "deadline passed"


def _race(w: World, count: int) -> Outcome:
    # Migrate once, as a deployment does before it starts workers.
    migrate = subprocess.run(
        [sys.executable, "-m", "billsync.sync.cli", "migrate", "--config", str(w.config)],
        cwd=REPO,
        env=billsync_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"billsync migrate failed: {migrate.stderr[-1500:]}")
    workers = [Worker(n + 1) for n in range(count)]
    started = time.monotonic()
    threads = [threading.Thread(target=_work, args=(w, worker, started)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    last_work = max((at for worker in workers for at, r in worker.runs if r.created), default=0.0)
    verdict = w.verify()
    per_deal = invoices_per_deal(w.handle.state())
    errors = [f"worker {wk.number}: {wk.error}" for wk in workers if wk.error]
    return Outcome(
        workers=workers,
        seconds=last_work,
        per_deal=per_deal,
        correct=verdict.ok and not errors,
        description="; ".join([verdict.describe(), *errors]),
    )


def run(ctx: Context) -> Section:
    options = dataset(ctx.sizes.scaleout_deals, quickbooks_share=Fraction(0))
    outcomes: dict[int, Outcome] = {}
    with postgres_server() as server:
        ctx.postgres_version = server_version(server)
        for count in ctx.sizes.scaleout_workers:
            with (
                fresh_database(server) as url,
                world(ctx.workdir, f"scaleout-{count}", options, ledger_url=url) as w,
            ):
                outcomes[count] = _race(w, count)
    section = Section(
        7,
        "Scale-out: workers sharing one PostgreSQL ledger",
        conditions=(
            f"{options.deals:,}-deal backlog billed in Stripe, limits off, no latency; "
            f"PostgreSQL {ctx.postgres_version.split()[0] if ctx.postgres_version else '?'} "
            "with default durability on this machine. Each worker repeats `billsync run` "
            f"(after {LEASE_RETRY_S:.0f} s when the lease is held) until a run creates nothing."
        ),
    )
    table = Table(
        [
            "workers",
            "backlog done in s",
            "invoices/min",
            "vs 1 worker",
            "invoices created per worker",
            "runs refused (lease held)",
            "deals with 2+ invoices",
        ]
    )
    base = None
    for count, outcome in outcomes.items():
        rate = per(options.deals, outcome.seconds) * 60
        base = base or rate
        duplicates = sum(n for k, n in outcome.per_deal.items() if k > 1)
        table.add(
            count,
            round(outcome.seconds, 1),
            round(rate, 1),
            f"{per(rate, base):.2f}×",
            " / ".join(str(wk.created) for wk in outcome.workers),
            sum(wk.lease_refusals for wk in outcome.workers),
            duplicates,
        )
        if not outcome.correct:
            section.correct = False
            section.problems.append(f"{count} workers: {outcome.description}")
    section.tables.append(table)
    return section
