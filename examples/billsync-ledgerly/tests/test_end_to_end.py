"""billsync itself, as a subprocess, billing deals into Ledgerly through this plug-in.

The deals come from billsync's own Salesforce sandbox (`running_sandbox`), routed to
Ledgerly by their Billing_Platform__c; Ledgerly is the fake API. Nothing here reaches into
billsync's internals: everything is checked through its command line, its webhook
route, the fake's state and the sandbox's Salesforce state.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from fake_ledgerly import API_KEY, WEBHOOK_SECRET, FakeLedgerly

from billsync.core import money
from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import SandboxHandle, running_sandbox

MAPPING = """\
routing:
  values:
    ledgerly: [Ledgerly]
products:
  ledgerly:
    # Salesforce product code → Ledgerly catalog code (the rest bill under their own).
    map: {SEAT: SEAT-ANNUAL}
"""


def billsync(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    return subprocess.run(  # noqa: S603 - our interpreter, our arguments
        [sys.executable, "-m", "billsync.sync.cli", *args, "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def run(config: Path) -> dict[str, Any]:
    result = billsync("run", "--json", config=config)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@dataclass
class World:
    sandbox: SandboxHandle
    fake: FakeLedgerly
    config: Path
    won: list[dict[str, Any]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, served: FakeLedgerly) -> Iterator[World]:
    served.reset()
    workdir = tmp_path_factory.mktemp("e2e")
    seed = generate_seed(GenerateOptions(deals=12, random_seed=11))
    for deal in seed["salesforce"]["Opportunity"]:
        deal["Billing_Platform__c"] = "Ledgerly"
        if not deal.get("OpportunityLineItems"):
            deal["StageName"] = "Closed Lost"  # a deal without lines is another test's
    (workdir / "seed.json").write_text(jsonutil.dumps(seed))
    with running_sandbox(workdir, seed_file=workdir / "seed.json") as sandbox:
        config = yaml.safe_load(sandbox.config_path.read_text())
        (workdir / "mapping.yaml").write_text(MAPPING)
        config["sync"].update(
            targets=["ledgerly"], default_target=None, mapping_files=[str(workdir / "mapping.yaml")]
        )
        config["ledgerly"] = {
            "enabled": True,
            "api_key": API_KEY,
            "base_url": served.url,
            "webhook_secrets": [WEBHOOK_SECRET],
        }
        path = workdir / "billsync-ledgerly.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        won = [d for d in seed["salesforce"]["Opportunity"] if d["StageName"] == "Closed Won"]
        yield World(sandbox, served, path, won)


def expected_total(deal: dict[str, Any]) -> Decimal:
    currency = deal["CurrencyIsoCode"]
    amounts = (
        money.line_amount(line["Quantity"], line["UnitPrice"], line["Discount"], currency)
        for line in deal["OpportunityLineItems"]
    )
    return money.sum_amounts(amounts, currency)


def test_each_won_deal_becomes_one_ledgerly_invoice(world: World) -> None:
    summary = run(world.config)
    assert summary["invoices_created"] == len(world.won), summary
    for deal in world.won:
        invoices = world.fake.invoices_with_reference(deal["Id"])
        assert len(invoices) == 1, deal["Id"]
        assert (invoices[0]["currency"], Decimal(invoices[0]["total"])) == (
            deal["CurrencyIsoCode"],
            expected_total(deal),
        )
    opportunities = {o["Id"]: o for o in world.sandbox.state()["salesforce"]["Opportunity"]}
    for deal in world.won:
        written = opportunities[deal["Id"]]
        invoice = world.fake.invoices_with_reference(deal["Id"])[0]
        assert (written["Billing_Invoice_Id__c"], written["Billing_Status__c"]) == (
            invoice["id"],
            "Invoiced",
        )
    # products.ledgerly.map (the connector's mapping part) was applied.
    codes = {line["catalog_code"] for i in world.fake.invoices for line in i["lines"]}
    assert "SEAT-ANNUAL" in codes and "SEAT" not in codes, codes
    # Nothing changed: a second run creates nothing.
    assert run(world.config)["invoices_created"] == 0


def test_a_payment_in_ledgerly_comes_back_to_the_deal(world: World) -> None:
    deal = world.won[0]
    invoice = world.fake.invoices_with_reference(deal["Id"])[0]
    world.fake.pay(invoice["id"])
    summary = run(world.config)
    assert summary["payments_applied"] >= 1, summary
    written = next(
        o for o in world.sandbox.state()["salesforce"]["Opportunity"] if o["Id"] == deal["Id"]
    )
    assert written["Billing_Status__c"] == "Paid", written


def test_a_signed_webhook_is_accepted_at_the_connection_route(world: World) -> None:
    body, headers = world.fake.webhooks[-1]
    with serving(world.config) as url:
        accepted = requests.post(f"{url}/webhooks/ledgerly", data=body, headers=headers, timeout=30)
        tampered = requests.post(
            f"{url}/webhooks/ledgerly", data=body + b" ", headers=headers, timeout=30
        )
    assert accepted.status_code in (200, 202), accepted.text
    assert tampered.status_code == 401, tampered.text


def test_config_check_shows_the_section_with_its_secrets_masked(world: World) -> None:
    result = billsync("config", "check", config=world.config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ledgerly" in result.stdout
    assert API_KEY not in result.stdout and WEBHOOK_SECRET not in result.stdout
    assert API_KEY not in result.stderr


def test_status_reports_the_session_and_the_key_expiry(world: World) -> None:
    result = billsync("status", config=world.config)
    line = next((s for s in result.stdout.splitlines() if "Ledgerly ledgerly:" in s), None)
    assert line is not None, result.stdout
    assert "session valid yes" in line and "API key expires" in line, line


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class serving:
    """`billsync serve` on 127.0.0.1:<free port> until the block ends."""

    def __init__(self, config: Path) -> None:
        self.config = config

    def __enter__(self) -> str:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
        command = [sys.executable, "-m", "billsync.sync.cli", "serve", "--config",
                   str(self.config), "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"billsync serve exited: {self.process.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return url
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("billsync serve did not start within 30 s")

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
