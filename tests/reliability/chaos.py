"""How big and how random the reliability suites are, from the environment.

``BILLSYNC_CHAOS=full`` selects the full sizes (`make chaos`: ≥ 50 kills per backend,
500 deals); anything else the reduced sizes CI runs on every push (a few kills, under
a hundred deals). ``BILLSYNC_CHAOS_SEED`` fixes every random choice (default: a fixed
seed, so CI is reproducible); a failing test prints the seed it ran with, and setting
the variable to it replays the same kills, faults and hostile inputs.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

MODE_ENV = "BILLSYNC_CHAOS"
SEED_ENV = "BILLSYNC_CHAOS_SEED"
DEFAULT_SEED = 20261123


@dataclass(frozen=True)
class Size:
    name: str
    crash_deals: int
    crash_kills: int  # per ledger backend
    refresh_kills: int
    fault_deals: int  # per round of a fault phase (each system in turn, then all at once)
    fault_rounds: int  # new deals and payments arrive this many times per phase
    fault_max_runs: int
    concurrency_rounds: int  # two simultaneous runs on SQLite, this many times
    worker_deals: int  # the four PostgreSQL workers' backlog, in waves
    webhook_copies: int  # duplicate deliveries of one genuine event, in parallel
    fuzz_examples: int
    http_fuzz_examples: int
    money_invoices: int  # the money lifecycle: invoices across QuickBooks and Stripe
    money_rounds: int  # rounds of random changes made in the targets directly

    @property
    def full(self) -> bool:
        return self.name == "full"


REDUCED = Size(
    name="reduced",
    crash_deals=60,
    crash_kills=3,
    refresh_kills=2,
    fault_deals=8,
    fault_rounds=1,
    fault_max_runs=6,
    concurrency_rounds=2,
    worker_deals=40,
    webhook_copies=10,
    fuzz_examples=150,
    http_fuzz_examples=60,
    money_invoices=60,
    money_rounds=4,
)
FULL = Size(
    name="full",
    crash_deals=500,
    crash_kills=50,
    refresh_kills=6,
    fault_deals=40,
    fault_rounds=3,
    fault_max_runs=10,
    concurrency_rounds=6,
    worker_deals=200,
    webhook_copies=30,
    fuzz_examples=2000,
    http_fuzz_examples=600,
    money_invoices=320,
    money_rounds=10,
)


def size() -> Size:
    return FULL if os.environ.get(MODE_ENV, "").strip().lower() == "full" else REDUCED


def seed() -> int:
    text = os.environ.get(SEED_ENV, "").strip()
    return int(text) if text else DEFAULT_SEED


def rng_for(test_id: str) -> random.Random:
    """One generator per test, so adding a test does not change another's choices."""
    return random.Random(f"{seed()}:{test_id}")


def replay_hint() -> str:
    return f"{SEED_ENV}={seed()} {MODE_ENV}={size().name}"
