"""The scenarios of issue 10, in order; `bench.__main__` runs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.harness import Context, Section
from bench.scenarios import (
    api_calls,
    backlog,
    memory,
    money_reads,
    overhead,
    scaleout,
    throughput,
    webhooks,
)


@dataclass(frozen=True)
class Scenario:
    number: int
    title: str
    run: Callable[[Context], Section]


SCENARIOS = (
    Scenario(1, "API calls per invoiced deal", api_calls.run),
    Scenario(2, "Throughput under the vendors' limits", throughput.run),
    Scenario(3, "Engine overhead", overhead.run),
    Scenario(4, "Incremental cost", backlog.run),
    Scenario(5, "Webhook ingest", webhooks.run),
    Scenario(6, "Memory", memory.run),
    Scenario(7, "Scale-out", scaleout.run),
    Scenario(8, "Money reads per changed invoice", money_reads.run),
)
