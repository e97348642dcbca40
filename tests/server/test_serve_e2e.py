"""`billsync serve` as a subprocess receiving the sandbox's signed webhooks.

`billsync run` invoices a small seed; then customers pay every invoice in the sandbox,
which delivers each Stripe event and each Intuit notification (legacy payload for half
the QuickBooks payments, CloudEvents for the rest) ten times, concurrently for Stripe.
The server stores each event once, its worker applies each payment once through the
real connectors and writes the money state back onto the Salesforce deals. SIGTERM
then stops it cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import SandboxHandle, running_sandbox
from billsync.sync.ledger import Ledger, create_ledger_engine
from billsync.sync.ledger.schema import inbox, payments
from tests.e2e.test_run_e2e import run_json
from tests.server.live import free_port

pytestmark = pytest.mark.slow
COPIES = 10


def start_serve(config: Path, port: int, cwd: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    log = (cwd / "serve.log").open("ab")
    command = [sys.executable, "-m", "billsync.sync.cli", "serve", "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def invoiced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxHandle, Path, int]]:
    workdir = tmp_path_factory.mktemp("serve-e2e")
    seed = generate_seed(GenerateOptions(deals=16, random_seed=15))
    (workdir / "seed.json").write_text(jsonutil.dumps(seed))
    port = free_port()
    with running_sandbox(
        workdir, seed_file=workdir / "seed.json", webhook_url=f"http://127.0.0.1:{port}"
    ) as handle:
        code, summary = run_json(handle, workdir)
        assert summary["invoices_created"] > 0, summary
        assert code in (0, 1)
        yield handle, workdir, port


def test_paid_invoices_flow_back_through_the_webhook_server(
    invoiced: tuple[SandboxHandle, Path, int],
) -> None:
    handle, workdir, port = invoiced
    base = f"http://127.0.0.1:{port}"
    ledger = Ledger(create_ledger_engine(f"sqlite:///{workdir / 'billsync.db'}"))
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT target, external_id, deal_id FROM invoices")).all()
    by_target: dict[str, list[tuple[str, str]]] = {}
    for target, external_id, deal_id in rows:
        by_target.setdefault(target, []).append((external_id, deal_id))
    assert by_target.get("stripe") and len(by_target.get("quickbooks", [])) >= 2, by_target

    server = start_serve(handle.config_path, port, workdir)
    try:
        wait_until(
            lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200, 60, "readyz"
        )
        handle.admin("POST", "webhooks", {"duplicates": COPIES})
        for external_id, _ in by_target["stripe"]:
            handle.admin("POST", f"stripe/invoices/{external_id}/pay", {})
        quickbooks = by_target["quickbooks"]
        half = len(quickbooks) // 2
        for shape, chunk in (("legacy", quickbooks[:half]), ("cloudevents", quickbooks[half:])):
            handle.admin("POST", "quickbooks/webhook_format", {"format": shape})
            for external_id, _ in chunk:
                invoice = ledger.get_invoice("quickbooks", external_id)
                assert invoice is not None
                handle.admin(
                    "POST",
                    "quickbooks/payments",
                    {"invoice_id": external_id, "amount": str(invoice.total)},
                )

        paid = [("stripe", i, d) for i, d in by_target["stripe"]]
        paid += [("quickbooks", i, d) for i, d in quickbooks]

        def all_paid_and_written_back() -> bool:
            for target, external_id, _ in paid:
                invoice = ledger.get_invoice(target, external_id)
                if invoice is None or invoice.status != "paid":
                    return False
            deals = {o["Id"]: o for o in handle.state()["salesforce"]["Opportunity"]}
            return all(deals[deal_id].get("Billing_Status__c") == "Paid" for _, _, deal_id in paid)

        wait_until(all_paid_and_written_back, 90, "every payment applied and written back")
        wait_until(
            lambda: all(d["delivered"] for d in handle.admin("GET", "webhooks")["deliveries"]),
            30,
            "every delivery acknowledged",
        )

        deliveries = handle.admin("GET", "webhooks")["deliveries"]
        assert deliveries and all(d["delivered"] for d in deliveries), [
            d for d in deliveries if not d["delivered"]
        ]
        with ledger.engine.connect() as conn:
            stored = conn.execute(sa.select(inbox.c.provider, inbox.c.event_id)).all()
            money = conn.execute(
                sa.select(payments.c.invoice_target, payments.c.invoice_external_id)
            ).all()
        assert len(stored) == len(set(stored)), "an event was stored twice"
        assert Counter(map(tuple, money)) == Counter((t, i) for t, i, _ in paid), (
            "each invoice has exactly one payment row"
        )
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        assert 'billsync_webhook_events_total{outcome="duplicate",provider="stripe"}' in metrics
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
        ledger.engine.dispose()
    log = (workdir / "serve.log").read_text()
    # uvicorn finishes the shutdown, then re-raises the signal it caught, so a process
    # manager sees the conventional "terminated by SIGTERM" (143 in a shell).
    assert code in (0, -signal.SIGTERM), log[-3000:]
    assert "server.stopped" in log and "Traceback" not in log, log[-3000:]
    assert "whsec_" not in log
