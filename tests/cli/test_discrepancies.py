"""`billsync discrepancies list|ack|resolve` against a real SQLite ledger: audited, with
the note, and refused (exit 2, nothing changed) for unknown or closed ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from tests.ops.conftest import Cli


def test_ack_and_resolve_are_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = create_ledger_engine(url)
    upgrade_to_head(engine)
    ledger = Ledger(engine)
    ledger.record_discrepancy("invoice_money_mismatch", "D1", "stripe", "paid 10.00 USD",
                              "paid 0.00 USD", {"invoice": "in_1"})  # fmt: skip
    ledger.record_discrepancy("deal_lost_after_invoice", "D2", "stripe", "Closed Won",
                              "Closed Lost", {"invoice": "in_2"})  # fmt: skip
    first, second = (row.id for row in ledger.open_discrepancies())
    cli = Cli(url, monkeypatch)

    listed = cli.json("discrepancies", "list", "--json")
    assert [(d["id"], d["expected"], d["actual"]) for d in listed] == [
        (first, "paid 10.00 USD", "paid 0.00 USD"),
        (second, "Closed Won", "Closed Lost"),
    ]
    acked = cli.json("discrepancies", "ack", str(first), "--note", "on it", "--actor", "cli:ana",
                     "--json")  # fmt: skip
    assert (acked["acknowledged_by"], acked["acknowledged_note"]) == ("cli:ana", "on it")
    assert acked["resolved_at"] is None
    assert [d["id"] for d in cli.json("discrepancies", "list", "--status", "unacknowledged",
                                      "--json")] == [second]  # fmt: skip
    done = cli("discrepancies", "resolve", str(second), "--note", "voided in Stripe")
    assert done.exit_code == 0 and "resolved discrepancy" in done.stdout
    assert cli("discrepancies", "resolve", str(second), "--note", "again").exit_code == 2
    assert cli("discrepancies", "ack", "4242", "--note", "x").exit_code == 2
    assert cli("discrepancies", "ack", str(first), "--note", "  ").exit_code == 2

    def trail(discrepancy_id: int) -> list[tuple[str, str, object]]:
        entries = ledger.audit_for(f"discrepancy:{discrepancy_id}")
        return [(e.actor, e.action, e.details.get("note")) for e in entries]

    assert trail(first) == [("cli:ana", "discrepancy.acknowledge", "on it")]
    [(actor, action, note)] = trail(second)
    assert actor.startswith("cli:") and (action, note) == (
        "discrepancy.resolve",
        "voided in Stripe",
    )
    engine.dispose()
