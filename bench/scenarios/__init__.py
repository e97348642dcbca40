"""The scenarios of issue 10, in order; `bench.__main__` runs them.

Scenario 5 (webhook ingest: signed events/s and p50/p99 with 32 concurrent clients) is
added with the webhook server (`billsync serve`, issue 8); until then it is listed and
reported as not built, never with a number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.harness import Context, Section
from bench.scenarios import api_calls, backlog, memory, overhead, scaleout, throughput


@dataclass(frozen=True)
class Scenario:
    number: int
    title: str
    run: Callable[[Context], Section] | None
    not_built: str = ""


SCENARIOS = (
    Scenario(1, "API calls per invoiced deal", api_calls.run),
    Scenario(2, "Throughput under the vendors' limits", throughput.run),
    Scenario(3, "Engine overhead", overhead.run),
    Scenario(4, "Incremental cost", backlog.run),
    Scenario(
        5,
        "Webhook ingest",
        None,
        not_built="added with the webhook server (`billsync serve`, issue 8): signed "
        "events/s and p50/p99 latency with 32 concurrent clients",
    ),
    Scenario(6, "Memory", memory.run),
    Scenario(7, "Scale-out", scaleout.run),
)
