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
