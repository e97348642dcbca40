"""Several companies in one deployment, end to end: two QuickBooks companies and two
Stripe accounts served by the sandbox (`--profile multi`), deals routed by the
Salesforce field `Billing_Platform__c`.

`billsync run` invoices every valid deal exactly once, in the company it is routed to
and in no other; the ledger names each invoice by its connection; a payment made in one
company comes back by polling onto that company's invoice; a signed Intuit
notification for the UK company that arrives at the app's one URL (`/webhooks/qbo_us`)
is stored under `qbo_uk`; and the operator surfaces show each connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import SandboxHandle, running_sandbox
from billsync.sandbox.profiles import MULTI
from billsync.sync.ledger import Ledger, create_ledger_engine
from tests.e2e import companies
from tests.e2e.test_run_e2e import billsync, run_json

pytestmark = pytest.mark.slow


def routed_to(deal: dict[str, Any]) -> str | None:
    return companies.expected_outcome(deal, MULTI)[0]


def invoices_by_deal(state: dict[str, Any]) -> dict[str, list[companies.Invoice]]:
    return companies.invoices_by_deal(state, MULTI)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxHandle, Any, Path]]:
    workdir = tmp_path_factory.mktemp("connections-e2e")
    seed = generate_seed(GenerateOptions(deals=48, random_seed=18, profile=MULTI))
    (workdir / "seed.json").write_text(jsonutil.dumps(seed))
    with running_sandbox(workdir, seed_file=workdir / "seed.json", profile="multi") as h:
        yield h, seed, workdir


def test_each_deal_is_invoiced_once_in_its_company(world: Any) -> None:
    handle, seed, workdir = world
    won = [d for d in seed["salesforce"]["Opportunity"] if d["StageName"] == "Closed Won"]
    code, summary = run_json(handle, workdir)
    assert code in (0, 1), summary
    state = handle.state()
    found = invoices_by_deal(state)
    ledger = Ledger(create_ledger_engine(f"sqlite:///{workdir / 'billsync.db'}"))
    invoiced = {d["Id"]: d for d in won if d["Id"] in found}
    # Every company bills some deals; a deal is invoiced in its company or fails, visibly.
    assert {routed_to(d) for d in invoiced.values()} == {c.connection for c in MULTI.companies}
    for deal in won:
        invoices = found.get(deal["Id"], [])
        target, total = companies.expected_outcome(deal, MULTI)
        if target is None:
            assert not invoices, deal["Id"]
            item = ledger.find_work("invoice", deal["Id"])
            assert item is not None and item.last_error_message, deal["Id"]
            continue
        assert [(c, t) for c, _, t in invoices] == [(target, total)], (deal["Id"], invoices)
        recorded = ledger.get_invoice(target, invoices[0][1])
        assert recorded is not None and recorded.deal_id == deal["Id"], deal["Id"]
    assert summary["invoices_created"] == len(invoiced)

    again_code, again = run_json(handle, workdir)
    assert again["invoices_created"] == 0, again
    assert again_code in (0, 1)


def test_a_payment_in_one_company_comes_back_to_that_company(world: Any) -> None:
    handle, _seed, workdir = world
    ledger = Ledger(create_ledger_engine(f"sqlite:///{workdir / 'billsync.db'}"))
    uk, eu = _invoices(ledger, "qbo_uk"), _invoices(ledger, "stripe_eu")
    assert uk and eu
    uk_id, uk_total = uk[0]
    handle.admin(
        "POST",
        "quickbooks/payments",
        {"realm_id": "qbo_uk", "invoice_id": uk_id, "amount": str(uk_total)},
    )
    eu_id, _ = eu[0]
    handle.admin("POST", f"stripe/invoices/{eu_id}/pay?account=stripe_eu", {})
    code, summary = run_json(handle, workdir)
    assert code in (0, 1), summary
    paid_uk = ledger.get_invoice("qbo_uk", uk_id)
    paid_eu = ledger.get_invoice("stripe_eu", eu_id)
    assert paid_uk is not None and paid_uk.status == "paid"
    assert paid_eu is not None and paid_eu.status == "paid"
    # Each realm numbers its invoices from 1: the US company's invoice with the same id
    # is another deal's, and stays unpaid.
    namesake = ledger.get_invoice("qbo_us", uk_id)
    assert namesake is None or namesake.status != "paid"


def test_status_lists_every_connection(world: Any) -> None:
    handle, _seed, workdir = world
    result = billsync("status", "--json", "--config", str(handle.config_path), cwd=workdir)
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    report = json.loads(result.stdout)
    text = json.dumps(report)
    for name in ("qbo_us", "qbo_uk", "stripe_us", "stripe_eu"):
        assert name in text, name


def _invoices(ledger: Ledger, connection: str) -> list[tuple[str, Decimal]]:
    import sqlalchemy as sa

    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT external_id, total FROM invoices WHERE target = :t ORDER BY 1"),
            {"t": connection},
        ).all()
    return [(str(r[0]), Decimal(str(r[1]))) for r in rows]


def test_webhooks_come_back_per_company_through_the_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`billsync serve` with the four connections: the Intuit app's one notification,
    carrying both realms, arrives at /webhooks/qbo_us and each company's part is stored
    under its own connection; each Stripe account's events arrive at its own route. The
    worker applies each payment to the right company's invoice."""
    import signal
    import subprocess

    import requests

    from tests.server.live import free_port
    from tests.server.test_serve_e2e import start_serve, wait_until

    workdir = tmp_path_factory.mktemp("connections-webhooks")
    seed = generate_seed(GenerateOptions(deals=48, random_seed=18, profile=MULTI))
    (workdir / "seed.json").write_text(jsonutil.dumps(seed))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_sandbox(
        workdir, seed_file=workdir / "seed.json", profile="multi", webhook_url=base
    ) as handle:
        code, _summary = run_json(handle, workdir)
        assert code in (0, 1)
        ledger = Ledger(create_ledger_engine(f"sqlite:///{workdir / 'billsync.db'}"))
        chosen = {name: _invoices(ledger, name)[0] for name in ("qbo_us", "qbo_uk", "stripe_eu")}
        server = start_serve(handle.config_path, port, workdir)
        try:
            wait_until(lambda: requests.get(f"{base}/readyz", timeout=2).ok, 60, "readyz")
            # Both companies' payments in one Intuit notification (one app, one URL).
            handle.admin("POST", "quickbooks/notifications", {"hold": True})
            for name in ("qbo_us", "qbo_uk"):
                external_id, total = chosen[name]
                body = {"realm_id": name, "invoice_id": external_id, "amount": str(total)}
                handle.admin("POST", "quickbooks/payments", body)
            handle.admin("POST", "quickbooks/notifications", {"hold": False})
            handle.admin("POST", f"stripe/invoices/{chosen['stripe_eu'][0]}/pay", {})

            def all_paid() -> bool:
                return all(
                    (found := ledger.get_invoice(name, external_id)) is not None
                    and found.status == "paid"
                    for name, (external_id, _) in chosen.items()
                )

            wait_until(all_paid, 60, "each company's payment applied to its own invoice")
            with ledger.engine.connect() as conn:
                stored = {
                    str(row[0])
                    for row in conn.execute(sa.text("SELECT DISTINCT provider FROM inbox"))
                }
            assert {"qbo_us", "qbo_uk", "stripe_eu"} <= stored, stored
            assert not {"quickbooks", "stripe"} & stored, stored
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
            ledger.engine.dispose()
