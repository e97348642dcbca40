"""Discrepancies: recorded once while open, history kept after resolution."""

from __future__ import annotations

from datetime import timedelta

from tests.ledger.conftest import T0, run_concurrently


def record(ledger, deal="006A", target="stripe", kind="invoice_total_mismatch", **kw):
    return ledger.record_discrepancy(
        kind, deal, target, kw.pop("expected", "1000.00"), kw.pop("actual", "990.00"), kw or None
    )


def test_recorded_once_while_open(ledger, clock):
    assert record(ledger, invoice="in_1")
    clock.advance(timedelta(hours=1))
    assert not record(ledger, actual="980.00")  # found again next cycle
    (open_row,) = ledger.open_discrepancies()
    assert (open_row.kind, open_row.deal_id, open_row.target) == (
        "invoice_total_mismatch",
        "006A",
        "stripe",
    )
    assert (open_row.expected, open_row.actual) == ("1000.00", "990.00")
    assert open_row.details == {"invoice": "in_1"}
    assert open_row.detected_at == T0 and open_row.resolved_at is None


def test_distinct_keys_are_distinct_discrepancies(ledger):
    assert record(ledger)
    assert record(ledger, deal="006B")
    assert record(ledger, target="quickbooks")
    assert record(ledger, kind="deal_changed_after_invoicing")
    assert len(ledger.open_discrepancies()) == 4
    assert len(ledger.open_discrepancies("deal_changed_after_invoicing")) == 1


def test_discrepancy_without_deal_or_target_is_deduplicated(ledger):
    assert ledger.record_discrepancy("payment_for_unknown_invoice", None, "stripe", None, "in_x")
    assert not ledger.record_discrepancy(
        "payment_for_unknown_invoice", None, "stripe", None, "in_x"
    )
    assert ledger.record_discrepancy("deal_amount_ne_lines", "006A", None, "10", "9")
    assert not ledger.record_discrepancy("deal_amount_ne_lines", "006A", None, "10", "9")


def test_resolve_then_reopen_keeps_history(ledger, clock):
    record(ledger)
    clock.advance(timedelta(hours=1))
    assert ledger.resolve_discrepancy("invoice_total_mismatch", "006A", "stripe")
    assert not ledger.resolve_discrepancy("invoice_total_mismatch", "006A", "stripe")
    assert ledger.open_discrepancies() == []
    assert record(ledger)  # it came back: a new row
    history = ledger.discrepancies_for_deal("006A")
    assert [d.resolved_at for d in history] == [clock.now, None]


def test_operator_resolution_is_audited(ledger):
    record(ledger)
    assert ledger.resolve_discrepancy(
        "invoice_total_mismatch", "006A", "stripe", actor="ops", note="credit note issued"
    )
    (row,) = ledger.discrepancies_for_deal("006A")
    (entry,) = ledger.audit_for(f"discrepancy:{row.id}")
    assert (entry.actor, entry.action, entry.details["note"]) == (
        "ops",
        "discrepancy.resolve",
        "credit note issued",
    )


def test_concurrent_detection_records_one_row(ledger):
    results = run_concurrently(lambda i: record(ledger), 6)
    assert results.count(True) == 1
    assert len(ledger.open_discrepancies()) == 1
