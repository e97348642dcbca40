"""Concurrency: what happens when billsync processes overlap, as they do in production.

- Two `billsync run` started together on one SQLite ledger: one runs, the other exits 3
  (the lease) and does nothing; nothing is duplicated.
- Four workers repeating `billsync run` on one PostgreSQL ledger while deals keep
  arriving and customers pay: they take turns (the lease), every worker gets work,
  every deal is invoiced once and every payment counted once.
- `billsync serve` receiving the sandbox's webhooks (each delivered three times) while
  `billsync run` polls the same payments from the providers' event feeds, both on one
  SQLite ledger: each payment is applied once, the deals show what was paid, nobody
  crashes or meets a locked database.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billsync.sandbox.launcher import SandboxHandle, running_sandbox
from tests.reliability import invariants
from tests.reliability.chaos import Size
from tests.reliability.summary import Tally
from tests.reliability.test_vendor_faults import _valid_deals
from tests.reliability.world import (
    RunResult,
    billsync,
    billsync_env,
    ledger_rows,
    run,
    seed_more,
    sqlite_url,
    start_run,
    start_serve,
    write_seed,
)
from tests.server.live import free_port

SUITE = "concurrency"


def _crashed(result: RunResult | None, log: str = "") -> list[str]:
    text = (result.stderr if result else "") + log
    found = []
    if result is not None and result.code not in (0, 1, 3):
        found.append(f"exit {result.code}: {result.stderr[-600:]}")
    for sign in ("Traceback", "database is locked", "internal error"):
        if sign in text:
            found.append(f"{sign!r} in the output: …{text[text.index(sign) - 300 :][:800]}")
    return found


# --- two runs at once on SQLite ---------------------------------------------------------


def test_two_runs_at_once_on_sqlite(
    tmp_path: Path, size: Size, rng: random.Random, tally: Tally
) -> None:
    first = _valid_deals(20, rng.randrange(10**6), 0)
    ledger_url = sqlite_url(tmp_path / "billsync.db")
    env = billsync_env(ledger_url)
    deals = list(first["salesforce"]["Opportunity"])
    problems: list[str] = []
    raced = 0
    with running_sandbox(tmp_path / "sb", seed_file=write_seed(tmp_path / "s.json", first)) as h:
        h.faults({"latency_ms": 30})  # a run lasts seconds, so the two overlap
        for n in range(size.concurrency_rounds):
            if n:
                more = _valid_deals(20, rng.randrange(10**6), 1000 * n)
                seed_more(h, {"salesforce": {"Opportunity": more["salesforce"]["Opportunity"]}})
                deals += more["salesforce"]["Opportunity"]
            logs = [tmp_path / f"race-{n}-{k}.log" for k in (0, 1)]
            racers = [start_run(h.config_path, env, tmp_path, logs[0])]
            time.sleep(rng.uniform(0.0, 0.5))
            racers.append(start_run(h.config_path, env, tmp_path, logs[1]))
            codes = sorted(p.wait(timeout=300) for p in racers)
            texts = [log.read_text(errors="replace") for log in logs]
            problems += [p for t in texts for p in _crashed(None, t)]
            print(f"round {n}: exit codes {codes}")
            if codes == [0, 0] or codes == [0, 1] or codes == [1, 1]:
                if _overlapped(texts):
                    problems.append(f"round {n}: two runs worked at the same time {codes}")
                continue  # one ended before the other began: no race to judge
            tally.tried(SUITE)
            raced += 1
            if codes[1] != 3 or codes[0] not in (0, 1):
                problems.append(f"round {n}: exit codes {codes}, expected one 3 and one 0/1")
            elif not any("another run holds the lease" in t for t in texts):
                problems.append(f"round {n}: the refused run did not say why")
        h.faults({})
        settle = run(h.config_path, env, tmp_path)
        problems += _crashed(settle)
        state = h.state()
    assert raced, "no round raced two runs (the machine is too slow for 30 ms calls?)"
    problems += invariants.everything(ledger_url, state, invariants.expectations(deals))
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found[:30])


def _span(text: str) -> tuple[str, str] | None:
    """(started, finished) timestamps of the run a log shows, if it ran at all."""
    stamps = {}
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") in ("run.started", "run.finished"):
            stamps[event["event"]] = str(event.get("timestamp"))
    if "run.started" not in stamps:
        return None
    return stamps["run.started"], stamps.get("run.finished", "9999")


def _overlapped(texts: list[str]) -> bool:
    spans = [s for s in map(_span, texts) if s is not None]
    return len(spans) == 2 and spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]


# --- four workers on PostgreSQL -----------------------------------------------------------


class _Worker(threading.Thread):
    """Repeats `billsync run` as a cron job on its own host would."""

    def __init__(self, number: int, config: Path, env: dict[str, str], cwd: Path) -> None:
        super().__init__(name=f"worker-{number}", daemon=True)
        self.number, self.config, self.env, self.cwd = number, config, env, cwd
        self.results: list[RunResult] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            result = run(self.config, self.env, self.cwd)
            self.results.append(result)
            time.sleep(1.0 if result.code == 3 else 0.1)  # a refused run costs a start-up

    @property
    def created(self) -> int:
        return sum(r.created + r.adopted for r in self.results)


def _until_drained(workers: list[_Worker], deadline_s: float = 300) -> None:
    """Until two runs in a row (any workers') created nothing."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        finished = sorted(
            (r for w in workers for r in w.results if r.summary), key=lambda r: r.finished_at
        )
        if len(finished) >= 2 and not any(r.created for r in finished[-2:]):
            return
        time.sleep(0.5)


def _feed(
    handle: SandboxHandle, ledger_url: str, waves: int, per_wave: int, rng: random.Random
) -> tuple[list[dict[str, Any]], list[str]]:
    """Deals arrive in waves; then, while the workers go on, customers pay about a
    third of the Stripe invoices (each once)."""
    deals: list[dict[str, Any]] = []
    for wave in range(waves):
        batch = _valid_deals(per_wave, rng.randrange(10**6), 1000 * (wave + 1))
        seed_more(handle, {"salesforce": {"Opportunity": batch["salesforce"]["Opportunity"]}})
        deals += batch["salesforce"]["Opportunity"]
        time.sleep(rng.uniform(1.5, 3.0))
    deadline = time.monotonic() + 120
    invoices: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(invoices) < len(deals) // 4:
        invoices = [r for r in ledger_rows(ledger_url, "invoices") if r["target"] == "stripe"]
        time.sleep(1.0)
    paid = [r["external_id"] for r in invoices if rng.random() < 0.35]
    for invoice in paid:
        handle.admin("POST", f"stripe/invoices/{invoice}/pay", {})
    return deals, paid


@pytest.mark.postgres
def test_four_workers_share_a_postgres_ledger(
    tmp_path: Path, postgres_url: str, size: Size, rng: random.Random, tally: Tally
) -> None:
    env = billsync_env(postgres_url)
    empty = _valid_deals(size.worker_deals, 1, 0)  # the accounts every wave's deals use
    empty["salesforce"]["Opportunity"] = []
    with running_sandbox(tmp_path / "sb", seed_file=write_seed(tmp_path / "s.json", empty)) as h:
        # Migrate once, as a deployment does before it starts its workers.
        migrated = billsync(env, tmp_path, "migrate", "--config", str(h.config_path))
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        h.faults({"latency_ms": 10})
        workers = [_Worker(n, h.config_path, env, tmp_path) for n in range(4)]
        try:
            for worker in workers:
                worker.start()
                time.sleep(rng.uniform(0.0, 0.7))
            waves = 6 if size.full else 3
            deals, paid = _feed(h, postgres_url, waves, size.worker_deals // waves, rng)
            _until_drained(workers)
        finally:
            for worker in workers:
                worker.stop.set()
            for worker in workers:
                worker.join(300)
        h.faults({})
        settle = run(h.config_path, env, tmp_path)  # whatever the last turn left
        state = h.state()
    results = [r for w in workers for r in w.results] + [settle]
    codes = Counter(r.code for r in results)
    shares = {w.name: w.created for w in workers}
    cycles = {w.name: sum(1 for r in w.results if r.code in (0, 1)) for w in workers}
    print(f"{len(results)} runs, exit codes {dict(codes)}, cycles per worker {cycles}, "
          f"invoices per worker {shares}, "
          f"{len(paid)} invoices paid meanwhile")  # fmt: skip
    tally.tried(SUITE, len(results))
    problems = [p for r in results for p in _crashed(r)]
    if sum(1 for n in cycles.values() if n) < 2:
        problems.append(f"one worker did every cycle: {cycles}")
    problems += invariants.everything(postgres_url, state, invariants.expectations(deals))
    problems += _payments_once(postgres_url)
    status = {r["external_id"]: r["status"] for r in ledger_rows(postgres_url, "invoices")}
    problems += [f"paid invoice {i} is {status.get(i)} in the ledger" for i in paid
                 if status.get(i) != "paid"]  # fmt: skip
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found[:30])


def _payments_once(ledger_url: str) -> list[str]:
    rows = ledger_rows(ledger_url, "payments")
    counted = Counter((r["provider"], r["provider_payment_id"]) for r in rows)
    problems = [f"payment {key} recorded {n} times" for key, n in counted.items() if n > 1]
    for invoice in ledger_rows(ledger_url, "invoices"):
        mine = [
            r
            for r in rows
            if r["invoice_external_id"] == invoice["external_id"] and r["kind"] == "payment"
        ]
        total = sum((Decimal(str(r["amount"])) for r in mine), Decimal(0))
        if total > Decimal(str(invoice["total"])):
            problems.append(f"invoice {invoice['external_id']}: {total} paid on {invoice['total']}")
    return problems


# --- the webhook server and a run, applying the same payments --------------------------


def test_serve_and_run_apply_the_same_payments(
    tmp_path: Path, size: Size, rng: random.Random, tally: Tally
) -> None:
    seed = _valid_deals(16, rng.randrange(10**6), 0)
    ledger_url = sqlite_url(tmp_path / "billsync.db")
    env = billsync_env(ledger_url)
    port = free_port()
    problems: list[str] = []
    with running_sandbox(
        tmp_path / "sb",
        seed_file=write_seed(tmp_path / "s.json", seed),
        webhook_url=f"http://127.0.0.1:{port}",
    ) as h:
        first = run(h.config_path, env, tmp_path)
        problems += _crashed(first)
        server = start_serve(h.config_path, env, tmp_path, port=port)
        try:
            h.admin("POST", "webhooks", {"duplicates": 3})
            invoices = ledger_rows(ledger_url, "invoices")
            for row in invoices:
                if row["target"] == "stripe":
                    h.admin("POST", f"stripe/invoices/{row['external_id']}/pay", {})
                else:
                    amount = format(Decimal(str(row["total"])), "f")
                    h.admin(
                        "POST",
                        "quickbooks/payments",
                        {"invoice_id": row["external_id"], "amount": amount},
                    )
                if rng.random() < 0.3:  # a run starts while payments are still arriving
                    problems += _crashed(run(h.config_path, env, tmp_path))
            runs = [run(h.config_path, env, tmp_path) for _ in range(2)]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                rows = ledger_rows(ledger_url, "invoices")
                if all(r["status"] == "paid" for r in rows):
                    break
                time.sleep(0.3)
            last = run(h.config_path, env, tmp_path)  # writes back whatever the worker has not
            state = h.state()
        finally:
            server.stop()
        serve_log = server.log()
    tally.tried(SUITE, len(invoices))
    problems += [p for r in [*runs, last] for p in _crashed(r)] + _crashed(None, serve_log)
    problems += _payments_once(ledger_url)
    rows = ledger_rows(ledger_url, "invoices")
    unpaid = [r["external_id"] for r in rows if r["status"] != "paid"]
    if unpaid:
        problems.append(f"invoices not paid in the ledger: {unpaid}")
    paid_rows = Counter(r["invoice_external_id"] for r in ledger_rows(ledger_url, "payments"))
    once = [r["external_id"] for r in rows if paid_rows[r["external_id"]] != 1]
    if once:
        problems.append(f"invoices without exactly one payment row: {once}")
    shown = {o["Id"]: o.get("Billing_Status__c") for o in state["salesforce"]["Opportunity"]}
    not_paid = {r["deal_id"]: shown.get(r["deal_id"]) for r in rows}
    not_paid = {d: s for d, s in not_paid.items() if s != "Paid"}
    if not_paid:
        problems.append(f"deals not shown as paid: {not_paid}")
    inbox = Counter((r["provider"], r["event_id"]) for r in ledger_rows(ledger_url, "inbox"))
    if any(n > 1 for n in inbox.values()):
        problems.append("an event was stored twice")
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found[:30])
