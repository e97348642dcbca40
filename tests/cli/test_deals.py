"""`billsync deals reroute` against a real SQLite ledger: refused (exit 2, nothing
changed, says what to do) while the old invoice is live; audited with the note once it
is voided, and the deal is queued for the next run."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from billsync.sync.engine.failures import INVOICE
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from billsync.sync.ledger.models import DealState
from tests.ops.conftest import Cli

DEAL = "006000000000000042"


def test_reroute_refuses_live_invoice_then_moves_voided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = create_ledger_engine(url)
    upgrade_to_head(engine)
    ledger = Ledger(engine)
    ledger.record_intent(DEAL, "quickbooks", "r1", "key-1", reference=DEAL)
    ledger.set_deal_state(DEAL, "quickbooks", DealState.INVOICED, external_invoice_id="130")
    invoice = {"target": "quickbooks", "external_id": "130", "currency": "USD",
               "total": Decimal("100.00"), "deal_id": DEAL}  # fmt: skip
    ledger.upsert_invoice(status="open", **invoice)
    cli = Cli(url, monkeypatch)

    refused = cli("deals", "reroute", DEAL, "--to", "stripe", "--note", "pays by card")
    assert refused.exit_code == 2
    assert "live invoice in quickbooks (130, status open)" in refused.stderr
    assert "void it in quickbooks first, then run `billsync reconcile`" in refused.stderr
    assert ledger.audit_for(f"deal:{DEAL}") == []
    assert cli("deals", "reroute", DEAL, "--to", "xero", "--note", "n").exit_code == 2
    assert cli("deals", "reroute", "006NOPE", "--to", "stripe", "--note", "n").exit_code == 2

    ledger.upsert_invoice(status="void", **invoice)
    moved = cli.json("deals", "reroute", DEAL, "--to", "stripe", "--note", "pays by card",
                     "--actor", "cli:ana", "--json")  # fmt: skip
    assert moved["closed"] == [{"target": "quickbooks", "state": "rerouted"}]
    [entry] = ledger.audit_for(f"deal:{DEAL}")
    assert (entry.actor, entry.action) == ("cli:ana", "deal.rerouted")
    assert entry.details["note"] == "pays by card" and entry.details["invoice"] == "130"
    record = ledger.get_deal(DEAL, "quickbooks")
    assert record is not None and record.state == DealState.REROUTED
    assert record.external_invoice_id is None  # no longer "the deal's invoice"
    item = ledger.find_work(INVOICE, DEAL)
    assert item is not None and item.payload["target"] == "stripe"
    assert item.next_attempt_at <= datetime.now(UTC)
    engine.dispose()
