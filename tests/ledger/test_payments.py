"""The ledger's mirror of a target's money: facts keyed by the target's ids, updated or
tombstoned (never added twice), figures derived from them, exact on both backends."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from billsync.core.canonical import InvoiceMoney, MoneyFact
from tests.ledger.conftest import T0, run_concurrently


def fact(fact_id: str, amount: str, kind: str = "payment", state: str = "applied", day: int = 0):
    return MoneyFact(
        fact_id=fact_id,
        kind=kind,
        state=state,
        amount=Decimal(amount),
        occurred_at=T0 + timedelta(days=day),
    )


def read(total: str, *facts: MoneyFact, external_id: str = "in_1", status: str = "open", **kw):
    return InvoiceMoney(
        target="stripe",
        external_id=external_id,
        currency=kw.pop("currency", "USD"),
        status=status,
        net=Decimal(total) - Decimal(kw.get("tax", "0")),
        tax=Decimal(kw.pop("tax", "0")),
        total=Decimal(total),
        facts=facts,
        **kw,
    )


def test_point_one_plus_point_two_is_point_three(ledger):
    change = ledger.record_invoice_money(read("1.00", fact("p1", "0.10"), fact("p2", "0.20")))
    assert change.after.amount_paid == Decimal("0.3") and change.after.balance == Decimal("0.7")


def test_the_same_read_twice_changes_nothing(ledger):
    first = ledger.record_invoice_money(read("100.00", fact("p1", "40.00")))
    again = ledger.record_invoice_money(read("100.00", fact("p1", "40.00")))
    assert first.changed and not again.changed
    assert len(ledger.payments_for_invoice("stripe", "in_1")) == 1


def test_a_changed_fact_updates_its_row(ledger):
    ledger.record_invoice_money(read("100.00", fact("p1", "50.00")))
    change = ledger.record_invoice_money(read("100.00", fact("p1", "20.00")))
    assert change.changed and change.after.amount_paid == Decimal("20")
    (row,) = ledger.payments_for_invoice("stripe", "in_1")
    assert row.amount == Decimal("20") and row.voided_at is None


def test_a_fact_the_target_dropped_is_tombstoned_and_can_come_back(ledger):
    ledger.record_invoice_money(read("100.00", fact("p1:invoice:in_1", "60.00"), fact("p2", "5")))
    change = ledger.record_invoice_money(read("100.00", fact("p2", "5.00")))
    assert change.after.amount_paid == Decimal("5")
    rows = {r.provider_payment_id: r for r in ledger.payments_for_invoice("stripe", "in_1")}
    assert rows["p1:invoice:in_1"].voided_at is not None
    assert ledger.invoices_with_fact("stripe", "p1") == ["in_1"]  # where it used to apply
    back = ledger.record_invoice_money(
        read("100.00", fact("p1:invoice:in_1", "60"), fact("p2", "5"))
    )
    assert back.after.amount_paid == Decimal("65")


def test_a_fact_moved_to_another_invoice_counts_once(ledger):
    ledger.record_invoice_money(read("100.00", fact("re_1", "10", "refund", "succeeded")))
    ledger.record_invoice_money(read("100.00", external_id="in_1"))
    ledger.record_invoice_money(
        read("50.00", fact("re_1", "10", "refund", "succeeded"), external_id="in_2")
    )
    assert ledger.get_invoice("stripe", "in_1").refunded == 0
    assert ledger.get_invoice("stripe", "in_2").refunded == Decimal("10")


def test_figures_and_status_come_from_derive(ledger):
    change = ledger.record_invoice_money(
        read(
            "110.00",
            fact("p1", "110.00"),
            fact("re_1", "30.00", "refund", "succeeded", day=1),
            fact("dp_1", "80.00", "dispute", "lost", day=2),
            status="paid",
            tax="10.00",
        )
    )
    after = change.after
    assert (after.net, after.tax, after.total) == (Decimal(100), Decimal(10), Decimal(110))
    assert after.balance == 0 and after.refunded == Decimal(30)
    assert after.dispute_lost == Decimal(80) and after.open_disputes == 0
    assert after.money_status == "dispute_lost"


def test_due_date_and_terms_follow_the_target(ledger):
    from datetime import date

    ledger.record_invoice_money(read("10.00", due_date=date(2026, 12, 31), terms="Net 30"))
    later = ledger.record_invoice_money(read("10.00", due_date=date(2027, 1, 15), terms="Net 45"))
    assert later.changed and later.after.due_date == date(2027, 1, 15)
    assert later.after.terms == "Net 45"


def test_large_and_three_decimal_amounts_are_exact(ledger):
    big = read("24691357802469134.25", fact("p1", "12345678901234567.12"))
    assert ledger.record_invoice_money(big).after.balance == Decimal("12345678901234567.13")
    kwd = read("1.050", fact("p1", "0.525"), external_id="in_k", currency="KWD")
    assert ledger.record_invoice_money(kwd).after.balance == Decimal("0.525")


@pytest.mark.parametrize(
    ("amount", "kind"),
    [(12.5, "payment"), (Decimal("-1"), "payment"), (Decimal("1"), "gift")],
)
def test_bad_facts_are_refused(amount, kind):
    with pytest.raises((ValidationError, TypeError)):
        MoneyFact(fact_id="x", kind=kind, amount=amount, occurred_at=T0)


def test_concurrent_identical_reads_record_one_row(ledger):
    results = run_concurrently(
        lambda i: ledger.record_invoice_money(read("10.00", fact("pi_same", "2.50"))).changed, 6
    )
    assert results.count(True) >= 1
    assert len(ledger.payments_for_invoice("stripe", "in_1")) == 1
    assert ledger.get_invoice("stripe", "in_1").balance == Decimal("7.5")


def test_invoice_stage_upsert_does_not_undo_a_read(ledger):
    ledger.record_invoice_money(read("100.00", fact("p1", "100.00"), status="paid"))
    ledger.upsert_invoice(
        target="stripe", external_id="in_1", currency="USD", total=Decimal(100), status="paid"
    )
    stored = ledger.get_invoice("stripe", "in_1")
    assert stored.money_status == "paid" and stored.balance == 0
