"""Against a sandbox enforcing Stripe's real test-mode limit (25 requests/s): our limiter
keeps a burst under it, and a 429 that gets through anyway is retried, not surfaced."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from billsync.connectors.stripe import connect
from tests.connectors.stripe.support import SYSTEM, ConnectorEnv
from tests.sandbox.harness import start_in_thread


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectorEnv]:
    tmp: Path = tmp_path_factory.mktemp("stripe-limited")
    with start_in_thread(tmp, systems={"stripe": SYSTEM}, rate_limits="real") as runner:
        yield ConnectorEnv(runner)


def burst(env: ConnectorEnv, **overrides: object) -> tuple[float, list[float]]:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    api = connect(env.settings(**overrides), sleep=sleep).api
    started = time.monotonic()
    for _ in range(40):
        api.call("customer list", lambda o: api.v1.customers.list(params={"limit": 1}, options=o))
    return time.monotonic() - started, sleeps


def test_the_limiter_keeps_a_burst_under_25_per_second(limited: ConnectorEnv) -> None:
    time.sleep(1.1)  # an empty window
    elapsed, _ = burst(limited, rate_limit_per_s=None)  # test key: 25/s
    assert elapsed >= 0.9  # 40 calls cannot fit in one second
    # No repeats beyond scheduling jitter: on a loaded 2-core CI machine a request can be
    # delayed into the next window; the limiter keeps that to a stray repeat at most.
    calls = limited.calls()
    assert set(calls) == {"GET /v1/customers"} and 40 <= calls["GET /v1/customers"] <= 42


def test_a_429_is_retried_with_backoff(limited: ConnectorEnv) -> None:
    time.sleep(1.1)
    limited.clear_calls()
    _, sleeps = burst(limited, rate_limit_per_s=1000, retry_attempts=10)  # limiter off
    calls = limited.calls()["GET /v1/customers"]
    assert calls > 40 and sleeps  # some were refused with 429 and retried after a wait
