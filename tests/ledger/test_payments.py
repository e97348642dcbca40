"""Payments: distinct facts, exact sums, duplicates cannot double count."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from sync.ledger import PaymentKind
from tests.ledger.conftest import T0, run_concurrently


def pay(ledger, payment_id, amount, kind=PaymentKind.PAYMENT, invoice="in_1", **extra):
    return ledger.record_payment(
        provider="stripe",
        provider_payment_id=payment_id,
        invoice_target="stripe",
        invoice_external_id=invoice,
        kind=kind,
        amount=amount,
        currency="USD",
        occurred_at=extra.pop("occurred_at", T0),
        **extra,
    )


def invoice(ledger, total, external_id="in_1"):
    return ledger.upsert_invoice(
        target="stripe", external_id=external_id, currency="USD", total=total, status="open"
    )


def test_point_one_plus_point_two_is_point_three(ledger):
    invoice(ledger, Decimal("1"))
    assert pay(ledger, "pi_1", Decimal("0.1"))
    assert pay(ledger, "pi_2", Decimal("0.2"))
    paid = ledger.amount_paid("stripe", "in_1")
    assert paid == Decimal("0.3") and str(paid) == "0.3"
    stored = ledger.get_invoice("stripe", "in_1")
    assert (stored.amount_paid, stored.balance) == (Decimal("0.3"), Decimal("0.7"))


def test_duplicate_payment_is_not_counted_twice(ledger):
    invoice(ledger, Decimal("100"))
    assert pay(ledger, "pi_1", Decimal("40"))
    assert not pay(ledger, "pi_1", Decimal("40"))  # webhook and poll both saw it
    assert ledger.amount_paid("stripe", "in_1") == Decimal(40)
    assert len(ledger.payments_for_invoice("stripe", "in_1")) == 1


def test_same_payment_id_from_another_provider_is_distinct(ledger):
    assert pay(ledger, "1001", Decimal(5))
    assert ledger.record_payment(
        provider="quickbooks",
        provider_payment_id="1001",
        invoice_target="quickbooks",
        invoice_external_id="77",
        kind="payment",
        amount=Decimal(5),
        currency="USD",
        occurred_at=T0,
    )


def test_refunds_chargebacks_and_credits(ledger):
    invoice(ledger, Decimal("100.00"))
    pay(ledger, "pi_1", Decimal("100.00"))
    pay(ledger, "re_1", Decimal("30.00"), PaymentKind.REFUND)
    pay(ledger, "dp_1", Decimal("20"), PaymentKind.CHARGEBACK)
    pay(ledger, "dp_1_won", Decimal("20"), PaymentKind.CHARGEBACK_REVERSAL)
    pay(ledger, "cn_1", Decimal("30"), PaymentKind.CREDIT)
    assert ledger.amount_paid("stripe", "in_1") == Decimal(70)  # credit is not cash
    stored = ledger.get_invoice("stripe", "in_1")
    assert (stored.amount_paid, stored.balance) == (Decimal(70), Decimal(0))


def test_payment_before_invoice_is_picked_up(ledger):
    assert pay(ledger, "pi_1", Decimal("12.34"))  # the webhook beat the create response
    assert ledger.get_invoice("stripe", "in_1") is None
    stored = invoice(ledger, Decimal("50"))
    assert (stored.amount_paid, stored.balance) == (Decimal("12.34"), Decimal("37.66"))


def test_large_amounts_sum_exactly(ledger):
    big = Decimal("12345678901234567.123456")
    pay(ledger, "pi_1", big)
    pay(ledger, "pi_2", big)
    assert ledger.amount_paid("stripe", "in_1") == Decimal("24691357802469134.246912")


def test_amount_paid_of_unknown_invoice_is_zero(ledger):
    assert ledger.amount_paid("stripe", "in_none") == Decimal(0)


@pytest.mark.parametrize(
    ("amount", "kind", "error"),
    [
        (12.5, "payment", TypeError),
        (Decimal("-1"), "payment", ValueError),
        (Decimal("1"), "gift", ValueError),
    ],
)
def test_bad_payments_are_refused(ledger, amount, kind, error):
    with pytest.raises(error):
        pay(ledger, "pi_bad", amount, kind)
    assert ledger.payments_for_invoice("stripe", "in_1") == []


def test_payment_record_round_trip(ledger):
    raw = {"id": "pi_1", "amount": Decimal("10.10"), "nested": {"ok": True}}
    pay(ledger, "pi_2", Decimal(1), occurred_at=T0 + timedelta(days=1))
    pay(ledger, "pi_1", Decimal("10.10"), raw=raw)
    first, second = ledger.payments_for_invoice("stripe", "in_1")
    assert (first.provider_payment_id, second.provider_payment_id) == ("pi_1", "pi_2")
    assert first.amount == Decimal("10.1") and first.kind == "payment"
    assert first.occurred_at == T0 and first.recorded_at == T0
    # Decimals are written as strings: JSON has no exact number type in Python.
    assert first.raw == {"id": "pi_1", "amount": "10.10", "nested": {"ok": True}}


def test_fractional_json_numbers_read_back_as_decimal(ledger):
    # e.g. a QuickBooks payload, whose amounts are JSON numbers
    pay(ledger, "pi_1", Decimal(1), raw={"TotalAmt": 100.1})
    (stored,) = ledger.payments_for_invoice("stripe", "in_1")
    assert stored.raw == {"TotalAmt": Decimal("100.1")}
    assert isinstance(stored.raw["TotalAmt"], Decimal)


def test_concurrent_duplicate_payments_count_once(ledger):
    invoice(ledger, Decimal(10))
    results = run_concurrently(lambda i: pay(ledger, "pi_same", Decimal("2.50")), 6)
    assert results.count(True) == 1
    assert ledger.amount_paid("stripe", "in_1") == Decimal("2.5")
    assert ledger.get_invoice("stripe", "in_1").balance == Decimal("7.5")


def test_voided_payment_stops_counting_and_stays_a_duplicate(ledger):
    invoice(ledger, Decimal("100"), "in_1")
    invoice(ledger, Decimal("50"), "in_2")
    assert pay(ledger, "P1:invoice:in_1", Decimal("60"), invoice="in_1")
    assert pay(ledger, "P1:invoice:in_2", Decimal("50"), invoice="in_2")
    assert pay(ledger, "P10:invoice:in_1", Decimal("5"), invoice="in_1")  # not P1's
    assert ledger.known_payment("stripe", "P1") and not ledger.known_payment("stripe", "P2")
    voided = ledger.void_payments("stripe", "P1")
    assert sorted(r.provider_payment_id for r in voided) == ["P1:invoice:in_1", "P1:invoice:in_2"]
    assert ledger.amount_paid("stripe", "in_1") == Decimal("5")
    assert ledger.get_invoice("stripe", "in_2").balance == Decimal("50")
    # A late re-delivery of the original payment cannot bring it back.
    assert not pay(ledger, "P1:invoice:in_1", Decimal("60"), invoice="in_1")
    assert ledger.amount_paid("stripe", "in_1") == Decimal("5")
    assert ledger.void_payments("stripe", "P1") == []
