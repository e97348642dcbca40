"""How many simple calls per second the sandbox serves (faults and limits off).

The sandbox must never be the bottleneck of a benchmark: billsync's own benchmarks
need it to answer far faster than any vendor would. This starts a real
`billsync sandbox serve` (rate limits off), then hammers one cheap read per system from
several client processes over keep-alive connections, and reports calls/s from the
clients' count and from the sandbox's own call counter.

    .venv/bin/python -m bench.sandbox_throughput [--seconds 10] [--clients 4] [--record]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.harness import machine
from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import SandboxHandle, running_sandbox

RESULTS = Path(__file__).with_name("RESULTS.md")


def _targets(handle: SandboxHandle) -> list[dict[str, Any]]:
    """One cheap authenticated read per system: (url, headers, verify)."""
    info = handle.info
    customer = requests.post(
        f"{info['stripe_url']}/v1/customers",
        data={"name": "Bench"},
        headers={"Authorization": f"Bearer {info['stripe_api_key']}"},
        timeout=10,
    ).json()
    sf_token = requests.post(
        info["salesforce_token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": info["salesforce_client_id"],
            "client_secret": info["salesforce_client_secret"],
        },
        verify=info["ca_bundle"],
        timeout=10,
    ).json()["access_token"]
    opportunity = handle.state()["salesforce"]["Opportunity"][0]["Id"]
    qbo = requests.post(
        info["token_url"],
        data={"grant_type": "refresh_token", "refresh_token": info["quickbooks_refresh_token"]},
        auth=(info["quickbooks_client_id"], info["quickbooks_client_secret"]),
        timeout=10,
    ).json()
    realm = info["quickbooks_realm_id"]
    item = handle.state()["quickbooks"]["Item"][0]["Id"]
    return [
        {
            "system": "salesforce",
            "url": f"{info['salesforce_url']}/services/data/v66.0/sobjects/Opportunity/"
            f"{opportunity}",
            "headers": {"Authorization": f"Bearer {sf_token}"},
            "verify": info["ca_bundle"],
        },
        {
            "system": "quickbooks",
            "url": f"{info['quickbooks_url']}/v3/company/{realm}/item/{item}?minorversion=75",
            "headers": {
                "Authorization": f"Bearer {qbo['access_token']}",
                "Accept": "application/json",
            },
            "verify": True,
        },
        {
            "system": "stripe",
            "url": f"{info['stripe_url']}/v1/customers/{customer['id']}",
            "headers": {"Authorization": f"Bearer {info['stripe_api_key']}"},
            "verify": True,
        },
    ]


def _client(target: dict[str, Any], seconds: float, queue: Any) -> None:
    session = requests.Session()
    session.headers.update(target["headers"])
    deadline = time.monotonic() + seconds
    done = errors = 0
    while time.monotonic() < deadline:
        response = session.get(target["url"], verify=target["verify"], timeout=10)
        if response.status_code == 200:
            done += 1
        else:
            errors += 1
    queue.put((done, errors))


def measure(
    handle: SandboxHandle, target: dict[str, Any], seconds: float, clients: int
) -> dict[str, Any]:
    handle.reset_calls()
    queue: Any = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_client, args=(target, seconds, queue))
        for _ in range(clients)
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    counted = handle.calls()["totals"].get(target["system"], 0)
    return {
        "system": target["system"],
        "calls": ok,
        "errors": errors,
        "counted_by_sandbox": counted,
        "seconds": round(elapsed, 2),
        "calls_per_s": round(ok / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)  # money-ok: a duration
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed.json"
        seed.write_text(jsonutil.dumps(generate_seed(GenerateOptions(deals=1000))))
        started = time.monotonic()
        with running_sandbox(Path(tmp) / "run", seed_file=seed) as handle:
            startup_s = time.monotonic() - started
            rows = [measure(handle, t, args.seconds, args.clients) for t in _targets(handle)]
    header = "| system | calls | errors | counted by sandbox | seconds | calls/s |"
    lines = [header, "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['system']} | {r['calls']} | {r['errors']} | {r['counted_by_sandbox']} | "
        f"{r['seconds']} | {r['calls_per_s']} |"
        for r in rows
    ]
    table = "\n".join(lines)
    table += (
        f"\n\nStart-up with a generated 1,000-deal seed, until the ready file: {startup_s:.2f} s"
    )
    print(table)
    if args.record:
        command = (
            f".venv/bin/python -m bench.sandbox_throughput --seconds {args.seconds:g} "
            f"--clients {args.clients} --record"
        )
        section = (
            f"\n## Sandbox throughput — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Command: `{command}`  \nMachine: {machine()}  \n"
            f"Faults off, rate limits off, {args.clients} client processes with keep-alive, "
            "one cheap authenticated GET per system.\n\n"
            f"{table}\n"
        )
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(section)


if __name__ == "__main__":
    main()
