"""Webhook ingest: signed Stripe events/s that `billsync serve` durably stores, and the
latency each client sees, with concurrent clients (issue 8 / benchmark scenario 5).

The server is the real thing: `billsync serve` as a subprocess with its inbox worker
running, configured against a sandbox (so its connectors are real) and a SQLite ledger
(the default install). Each client is a thread holding one keep-alive HTTP connection
and posting unique signed `invoice.paid` events. "Durably stored" is checked, not
assumed: after the run, the inbox holds exactly one row per distinct event sent.

    .venv/bin/python -m bench.webhook_ingest --events 5000 --clients 32 [--record]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
import yaml

from bench.harness import machine
from billsync.sandbox.launcher import running_sandbox
from billsync.sync.ledger import create_ledger_engine

RESULTS = Path(__file__).with_name("RESULTS.md")
TARGET_EVENTS_PER_S = 500
TARGET_P99_MS = 100


@dataclass
class Outcome:
    events: int
    clients: int
    seconds: float  # money-ok: a duration
    latencies_ms: list[float]
    errors: int
    stored: int

    @property
    def events_per_s(self) -> float:  # money-ok: a rate
        return self.events / self.seconds

    def percentile(self, p: float) -> float:  # money-ok: a duration
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _event(event_id: str, api_version: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": api_version,
            "created": int(time.time()),
            "type": "invoice.paid",
            "livemode": False,
            "data": {"object": {"id": f"in_bench_{event_id}", "object": "invoice"}},
        }
    ).encode()


def _signed(body: bytes, secret: str) -> dict[str, str]:
    stamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={mac}", "Content-Type": "application/json"}


def _client(
    port: int, bodies: list[bytes], secret: str, latencies: list[float], errors: list[int]
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for body in bodies:
        headers = _signed(body, secret)
        started = time.perf_counter()
        try:
            conn.request("POST", "/webhooks/stripe", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            ok = False
        latencies.append((time.perf_counter() - started) * 1000)
        if not ok:
            errors.append(1)
    conn.close()


CLIENT_PROCESSES = 4
"""Clients are threads spread over this many processes, so the load generator's own GIL
does not add queueing to the latencies it measures."""


def _client_process(
    port: int, shares: list[list[bytes]], secret: str, go: Any, results: Any
) -> None:
    latencies: list[float] = []
    errors: list[int] = []
    threads = [
        threading.Thread(target=_client, args=(port, share, secret, latencies, errors))
        for share in shares
    ]
    go.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((latencies, len(errors)))


def _drive(
    port: int, bodies: list[bytes], secret: str, clients: int
) -> tuple[float, list[float], int]:
    shares = [bodies[i::clients] for i in range(clients)]
    processes = min(CLIENT_PROCESSES, clients)
    go = multiprocessing.Event()
    results: Any = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(
            target=_client_process, args=(port, shares[p::processes], secret, go, results)
        )
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # let every process import and build its threads first
    started = time.perf_counter()
    go.set()
    collected = [results.get() for _ in workers]
    seconds = time.perf_counter() - started
    for worker in workers:
        worker.join()
    latencies = [ms for part, _ in collected for ms in part]
    return seconds, latencies, sum(errors for _, errors in collected)


def measure(workdir: Path, events: int, clients: int) -> Outcome:
    port = _free_port()
    with running_sandbox(workdir, webhook_url=None) as handle:
        config = yaml.safe_load(handle.config_path.read_text())
        secret = config["stripe"]["webhook_secrets"][0]
        api_version = config["stripe"].get("api_version")
        if not api_version:
            import stripe

            api_version = stripe.api_version
        env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
        log = (workdir / "serve.log").open("wb")
        command = [sys.executable, "-m", "billsync.sync.cli", "--log-level", "warning", "serve"]
        command += ["--config", str(handle.config_path), "--host", "127.0.0.1", "--port", str(port)]
        server = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(port, server)
            bodies = [_event(f"evt_bench_{n:07d}", api_version) for n in range(events)]
            seconds, latencies, errors = _drive(port, bodies, secret, clients)
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
        db = create_ledger_engine(f"sqlite:///{workdir / 'billsync.db'}")
        with db.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT count(DISTINCT event_id) FROM inbox WHERE provider = 'stripe'")
            ).scalar_one()
        db.dispose()
    return Outcome(events, clients, seconds, latencies, errors, int(stored))


def _wait_ready(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"billsync serve exited with {server.returncode}; see serve.log")
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError("billsync serve did not become ready in 60 s")


def table(outcome: Outcome) -> str:
    p50, p99 = outcome.percentile(0.50), outcome.percentile(0.99)
    rate_ok = "met" if outcome.events_per_s >= TARGET_EVENTS_PER_S else "MISSED"
    p99_ok = "met" if p99 < TARGET_P99_MS else "MISSED"
    return "\n".join(
        [
            "| events | clients | errors | durably stored | seconds | events/s | p50 ms "
            "| p99 ms | mean ms |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {outcome.events} | {outcome.clients} | {outcome.errors} | {outcome.stored} | "
            f"{outcome.seconds:.2f} | {outcome.events_per_s:.0f} | {p50:.1f} | {p99:.1f} | "
            f"{statistics.fmean(outcome.latencies_ms):.1f} |",
            "",
            f"Targets: ≥ {TARGET_EVENTS_PER_S} events/s ({rate_ok}); p99 < {TARGET_P99_MS} ms "
            f"({p99_ok}).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        outcome = measure(Path(tmp), args.events, args.clients)
    text = table(outcome)
    print(text)
    if outcome.stored != args.events or outcome.errors:
        print("FAILED: not every event was acknowledged and stored exactly once", file=sys.stderr)
        raise SystemExit(1)
    if args.record:
        command = (
            f".venv/bin/python -m bench.webhook_ingest --events {args.events} "
            f"--clients {args.clients} --record"
        )
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(
                f"\n## Webhook ingest — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
                f"Command: `{command}`  \nMachine: {machine()}  \n"
                "`billsync serve` (one uvicorn worker, inbox worker running, SQLite ledger "
                "in WAL mode) against the sandbox; clients are threads spread over "
                f"{CLIENT_PROCESSES} processes on the same machine, one keep-alive "
                "connection each, unique signed Stripe "
                "`invoice.paid` events. Durably stored = distinct inbox rows after the run.\n\n"
                f"{text}\n"
            )


if __name__ == "__main__":
    main()
