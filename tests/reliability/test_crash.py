"""Crash: `billsync run` killed with SIGKILL at seeded random points while it syncs
deals to both targets, against a sandbox that keeps running; then run to completion.

Whatever instant each process dies at — reading deals, between intent and call,
inside a vendor call, between the answer and the ledger write, during write-back —
the end state must hold every invariant (tests/reliability/invariants.py): exactly one
invoice per valid deal and target, every write-back present, ledger and targets in
agreement, no intent row left open. On SQLite and on PostgreSQL.

Also: a kill in the middle of a QuickBooks token refresh (Intuit rotates the refresh
token on every refresh) must not strand the connection: the next run connects with
what the ledger saved.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import SandboxHandle, running_sandbox
from billsync.sandbox.profiles import MULTI, SINGLE, Profile
from tests.reliability import invariants
from tests.reliability.chaos import Size
from tests.reliability.summary import Tally
from tests.reliability.world import (
    LEASE_TTL_S,
    RunResult,
    billsync_env,
    kill,
    run,
    run_until_done,
    sqlite_url,
    start_run,
    won_deals,
    write_seed,
)

SUITE = "crash"
LATENCY_MS = 20  # every vendor call takes a little while, so kills land inside them


def _last_event(log: Path) -> str:
    """Where the killed process was: the last log event it wrote."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        try:
            return str(json.loads(line).get("event"))
        except ValueError:
            continue
    return "(nothing logged: still starting)"


WORK_EVENTS = ('"invoice.created"', '"invoice.adopted"', '"stripe.customer_created"')


def _wait_for(log: Path, needles: tuple[str, ...], process: Any, deadline_s: float = 60) -> None:
    """Until the run's log shows one of `needles` (or the run ends, or time runs out)."""
    deadline = time.monotonic() + deadline_s
    while process.poll() is None and time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if any(needle in text for needle in needles):
            return
        time.sleep(0.02)


def _kill_repeatedly(
    handle: SandboxHandle, env: dict[str, str], cwd: Path, size: Size, rng: random.Random
) -> Counter[str]:
    """Start a run, kill it at a random instant of its work, wait out its lease;
    `crash_kills` times. A quarter of the kills land while the run reads and plans, the
    rest once it has started creating customers and invoices (a 500-deal pull takes
    long enough that kills timed from the start would rarely reach the creates).
    Returns where the landed kills hit (the killed process's last log event)."""
    landed: Counter[str] = Counter()
    for n in range(size.crash_kills):
        log = cwd / f"killed-{n}.log"
        process = start_run(handle.config_path, env, cwd, log)
        _wait_for(log, ('"run.started"',), process)
        if rng.random() < 0.25:
            time.sleep(rng.uniform(0.0, 3.0))
        else:
            _wait_for(log, WORK_EVENTS, process)
            time.sleep(rng.uniform(0.0, 2.0))
        if kill(process):
            landed[_last_event(log)] += 1
        time.sleep(LEASE_TTL_S + 0.1)  # the killed run's lease expires
    return landed


def _exit_problems(results: list[RunResult]) -> list[str]:
    problems = []
    for r in results:
        if r.code not in (0, 1, 3) or "Traceback" in r.stderr:
            problems.append(f"run after the crashes exited {r.code}: {r.stderr[-600:]}")
    if not results or results[-1].summary is None or results[-1].created:
        problems.append("the runs after the crashes did not settle")
    return problems


def _crash_then_finish(
    tmp_path: Path,
    ledger_url: str,
    size: Size,
    rng: random.Random,
    tally: Tally,
    profile: Profile = SINGLE,
) -> None:
    options = GenerateOptions(
        deals=size.crash_deals, random_seed=rng.randrange(10**6), profile=profile
    )
    seed = generate_seed(options)
    expected = invariants.expectations(won_deals(seed), profile)
    seed_file = write_seed(tmp_path / "seed.json", seed)
    with running_sandbox(tmp_path / "sb", seed_file=seed_file, profile=profile.name) as h:
        env = billsync_env(ledger_url)
        h.faults({"latency_ms": LATENCY_MS, "seed": rng.randrange(10**6)})
        landed = _kill_repeatedly(h, env, tmp_path, size, rng)
        h.faults({})
        results = run_until_done(h.config_path, env, tmp_path, max_runs=6)
        state = h.state()
    print(f"kills landed: {sum(landed.values())} of {size.crash_kills}; last events: {landed}")
    tally.tried(SUITE, sum(landed.values()))
    assert sum(landed.values()) >= max(1, size.crash_kills // 2), landed
    found = tally.violated(
        SUITE,
        _exit_problems(results) + invariants.everything(ledger_url, state, expected, profile),
    )
    assert found == [], "\n".join(found[:30])


def test_sigkill_at_random_points_sqlite(
    tmp_path: Path, size: Size, rng: random.Random, tally: Tally
) -> None:
    _crash_then_finish(tmp_path, sqlite_url(tmp_path / "billsync.db"), size, rng, tally)


@pytest.mark.postgres
def test_sigkill_at_random_points_postgres(
    tmp_path: Path, postgres_url: str, size: Size, rng: random.Random, tally: Tally
) -> None:
    _crash_then_finish(tmp_path, postgres_url, size, rng, tally)


def test_sigkill_at_random_points_several_companies(
    tmp_path: Path, size: Size, rng: random.Random, tally: Tally
) -> None:
    """The same plan on one deployment serving two QuickBooks companies and two Stripe
    accounts (issue 18): each deal is invoiced exactly once, in the company its
    Salesforce field routes it to, whatever instant each run dies at."""
    url = sqlite_url(tmp_path / "billsync.db")
    _crash_then_finish(tmp_path, url, size, rng, tally, MULTI)


# --- a kill during a QuickBooks token refresh ---------------------------------------


def _quickbooks_only_seed(deals: int, random_seed: int) -> dict[str, Any]:
    """Valid USD deals billed in QuickBooks only, so a clean run exits 0."""
    seed = generate_seed(GenerateOptions(deals=deals, random_seed=random_seed))
    seed["salesforce"]["Opportunity"] = [
        {**deal, "Billing_Platform__c": "QuickBooks", "CurrencyIsoCode": "USD"}
        for deal in seed["salesforce"]["Opportunity"]
        if deal.get("OpportunityLineItems")
    ]
    return seed


def _quickbooks_trouble(result: RunResult) -> list[str]:
    """What went wrong with QuickBooks in a run, from its summary and log events."""
    found = []
    if result.summary is None or result.code != 0:
        found.append(f"exit {result.code}, summary {result.summary}")
    for line in result.stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        text = json.dumps(event)
        if event.get("level") in ("warning", "error") and "quickbooks" in text.lower():
            found.append(f"{event.get('event')}: {event.get('message') or event.get('code')}")
    return found


def _token_calls(handle: SandboxHandle) -> int:
    calls = handle.calls()["systems"].get("quickbooks", {})
    return sum(n for endpoint, n in calls.items() if "token" in endpoint)


def _kill_during_refresh(
    handle: SandboxHandle, env: dict[str, str], cwd: Path, rng: random.Random, n: int
) -> tuple[bool, float]:
    """Start a run whose QuickBooks access token is refused (expired at Intuit), so its
    first QuickBooks call refreshes; the token endpoint answers slowly; kill the run at
    a random instant from the moment the refresh request arrives until a little after
    the answer (before the save, during it, or just after)."""
    handle.admin("POST", "quickbooks/oauth/expire_access_tokens", {})
    handle.reset_calls()
    handle.faults({"systems": ["quickbooks"], "latency_ms": 1200})
    process = start_run(handle.config_path, env, cwd, cwd / f"refresh-killed-{n}.log")
    deadline = time.monotonic() + 60
    while _token_calls(handle) == 0 and process.poll() is None:
        assert time.monotonic() < deadline, "the run never refreshed the QuickBooks token"
        time.sleep(0.02)
    delay = rng.uniform(0.0, 1.6)
    time.sleep(delay)
    landed = kill(process)
    handle.faults({})
    time.sleep(LEASE_TTL_S + 0.1)
    return landed, delay


def _expire_refresher_lease(ledger_url: str) -> int:
    """A process killed while refreshing keeps the refresher lease until it expires
    (60 s): the next run waits for that, then refreshes with the saved token (the full
    suite waits it out and measures it). The reduced suite fast-forwards the expiry by
    removing the dead holder's lease row, which is what expiry amounts to."""
    engine = sa.create_engine(ledger_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text("DELETE FROM leases WHERE name LIKE 'credentials:%'"))
        return int(result.rowcount)
    finally:
        engine.dispose()


def test_kill_during_quickbooks_token_refresh(
    tmp_path: Path, size: Size, rng: random.Random, tally: Tally
) -> None:
    seed = _quickbooks_only_seed(6 * (size.refresh_kills + 1), rng.randrange(10**6))
    ledger_url = sqlite_url(tmp_path / "billsync.db")
    env = billsync_env(ledger_url)
    problems: list[str] = []
    with running_sandbox(tmp_path / "sb", seed_file=write_seed(tmp_path / "seed.json", seed)) as h:
        first = run(h.config_path, env, tmp_path)  # connected: a token pair is saved
        assert first.code in (0, 1) and first.created, first.stderr[-2000:]
        for n in range(size.refresh_kills):
            landed, delay = _kill_during_refresh(h, env, tmp_path, rng, n)
            tally.tried(SUITE)
            print(f"refresh kill {n}: {delay:.2f} s after the token request, landed={landed}")
            # Refused again, so the next run's first QuickBooks call needs a fresh token.
            h.admin("POST", "quickbooks/oauth/expire_access_tokens", {})
            if not size.full and _expire_refresher_lease(ledger_url):
                print("  the killed run held the refresher lease: expiry fast-forwarded")
            started = time.monotonic()
            after = run(h.config_path, env, tmp_path)
            (tmp_path / f"after-refresh-kill-{n}.log").write_text(after.stdout + after.stderr)
            print(f"  the next run took {time.monotonic() - started:.1f} s, exit {after.code}")
            trouble = _quickbooks_trouble(after)
            if trouble:
                problems.append(
                    f"kill {n} ({delay:.2f} s after the token request): the next run did "
                    f"not connect to QuickBooks cleanly: {trouble[:3]}"
                )
        state = h.state()
    expected = invariants.expectations(won_deals(seed))
    problems += invariants.in_sandbox(state, expected)
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found)
