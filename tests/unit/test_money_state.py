"""The one money-state function and the one Billing Status mapping, case by case.

Each row is a target's situation written as facts; the comment says what the vendor
shows for it, which is what the derived figures must agree with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billsync.core.canonical import FactState, InvoiceStatus, MoneyFact, MoneyFactKind
from billsync.core.money_state import BillingStatus, MoneyStatus, billing_status, derive

D = Decimal
K = MoneyFactKind
S = FactState


def fact(kind: K, amount: str, state: S = S.APPLIED, n: int = 0, fid: str = "") -> MoneyFact:
    return MoneyFact(
        fact_id=fid or f"{kind.value}-{n}",
        kind=kind,
        state=state,
        amount=D(amount),
        occurred_at=datetime(2026, 12, 1, 10, n, tzinfo=UTC),
    )


CASES = [
    # (name, document status, total, facts, status, paid, balance_due, extra checks)
    ("new invoice", "open", "100.00", [], MoneyStatus.OPEN, "0", "100.00", {}),
    ("partial payment", "open", "100.00", [fact(K.PAYMENT, "40.00")],
     MoneyStatus.PARTIALLY_PAID, "40.00", "60.00", {}),
    ("paid in two", "paid", "100.00",
     [fact(K.PAYMENT, "40.00", n=1), fact(K.PAYMENT, "60.00", n=2)],
     MoneyStatus.PAID, "100.00", "0", {}),
    # Stripe: amount_paid can exceed the total; amount_overpaid goes to customer credit.
    ("overpaid", "paid", "100.00", [fact(K.PAYMENT, "125.00")],
     MoneyStatus.OVERPAID, "125.00", "0", {"overpaid": "25.00"}),
    # QBO: a payment's UnappliedAmt stays customer credit; Balance 0, nothing more paid.
    ("overpaid, excess unapplied", "paid", "100.00",
     [fact(K.PAYMENT, "100.00"), fact(K.UNAPPLIED, "25.00")],
     MoneyStatus.OVERPAID, "100.00", "0", {"overpaid": "25.00", "unapplied": "25.00"}),
    # QBO: a credit memo on it voided later: Balance rises by the credit and the
    # payment's excess stays unapplied — owed again while the customer holds credit.
    ("overpaid, then a credit voided", "open", "100.00",
     [fact(K.CREDIT, "30.00", S.VOID), fact(K.PAYMENT, "70.00"), fact(K.UNAPPLIED, "80.00")],
     MoneyStatus.PARTIALLY_PAID, "70.00", "30.00", {"overpaid": "80.00", "credited": "0"}),
    # Stripe: a refunded invoice stays `paid`, amount_remaining 0 — not owed again.
    ("paid then partly refunded", "paid", "100.00",
     [fact(K.PAYMENT, "100.00"), fact(K.REFUND, "30.00", S.SUCCEEDED)],
     MoneyStatus.PARTIALLY_REFUNDED, "100.00", "0", {"refunded": "30.00"}),
    ("refunded in full", "paid", "100.00",
     [fact(K.PAYMENT, "100.00"), fact(K.REFUND, "100.00", S.SUCCEEDED)],
     MoneyStatus.REFUNDED, "100.00", "0", {"refunded": "100.00"}),
    ("refund pending counts", "paid", "100.00",
     [fact(K.PAYMENT, "100.00"), fact(K.REFUND, "10.00", S.PENDING)],
     MoneyStatus.PARTIALLY_REFUNDED, "100.00", "0", {"refunded": "10.00"}),
    # Stripe charge.refund.updated -> failed: the money came back.
    ("refund failed", "paid", "100.00",
     [fact(K.PAYMENT, "100.00"), fact(K.REFUND, "30.00", S.FAILED)],
     MoneyStatus.PAID, "100.00", "0", {"refunded": "0"}),
    # Stripe voided invoice: nothing is owed, whatever amount_remaining said before.
    ("voided", "void", "100.00", [], MoneyStatus.VOIDED, "0", "0", {}),
    ("deleted", "deleted", "100.00", [fact(K.PAYMENT, "10.00")],
     MoneyStatus.DELETED, "10.00", "0", {}),
    ("dispute open", "paid", "100.00",
     [fact(K.PAYMENT, "100.00"), fact(K.DISPUTE, "100.00", S.OPEN)],
     MoneyStatus.DISPUTED, "100.00", "0", {"disputed": "100.00", "open_disputes": 1}),
    ("dispute inquiry withdraws nothing", "paid", "100.00",
     [fact(K.PAYMENT, "100.00"), fact(K.DISPUTE, "100.00", S.INQUIRY)],
     MoneyStatus.DISPUTED, "100.00", "0", {"disputed": "0", "open_disputes": 1}),
    ("dispute won", "paid", "100.00",
     [fact(K.PAYMENT, "100.00"), fact(K.DISPUTE, "100.00", S.WON)],
     MoneyStatus.PAID, "100.00", "0", {"disputed": "0", "open_disputes": 0}),
    # A lost dispute is closed: not an open dispute, and the money is gone for good.
    ("dispute lost", "paid", "100.00",
     [fact(K.PAYMENT, "100.00"), fact(K.DISPUTE, "100.00", S.LOST)],
     MoneyStatus.DISPUTE_LOST, "100.00", "0",
     {"dispute_lost": "100.00", "open_disputes": 0, "net_collected": "0"}),
    # Stripe pre-payment credit note: amount_due = total - credit; fully credited = paid.
    ("credited in full", "paid", "100.00", [fact(K.CREDIT, "100.00")],
     MoneyStatus.PAID, "0", "0", {"credited": "100.00"}),
    ("credit then pay the rest", "paid", "100.00",
     [fact(K.CREDIT, "20.00"), fact(K.PAYMENT, "80.00")], MoneyStatus.PAID, "80.00", "0", {}),
    # A voided credit note restores the balance.
    ("credit note voided", "open", "100.00", [fact(K.CREDIT, "20.00", S.VOID)],
     MoneyStatus.OPEN, "0", "100.00", {"credited": "0"}),
    # Stripe post-payment credit note: credits money paid; amount_remaining unchanged.
    ("post-payment credit", "paid", "100.00",
     [fact(K.PAYMENT, "100.00"), fact(K.POST_PAYMENT_CREDIT, "30.00")],
     MoneyStatus.PAID, "100.00", "0", {"credited_after_payment": "30.00"}),
    # Stripe marked uncollectible: amount_remaining stays; it is written off AR.
    ("written off", "uncollectible", "100.00", [fact(K.PAYMENT, "10.00")],
     MoneyStatus.UNCOLLECTIBLE, "10.00", "90.00", {"written_off": "90.00", "open_ar": "0"}),
    # Stripe: a dispute opened on a written-off invoice; it stays uncollectible, out of AR.
    ("dispute on a written-off invoice", "uncollectible", "100.00",
     [fact(K.PAYMENT, "10.00"), fact(K.DISPUTE, "10.00", S.OPEN)],
     MoneyStatus.DISPUTED, "10.00", "90.00", {"written_off": "90.00", "open_ar": "0"}),
    # Stripe: paying an uncollectible invoice moves it to paid.
    ("written off then paid", "paid", "100.00", [fact(K.PAYMENT, "100.00")],
     MoneyStatus.PAID, "100.00", "0", {"written_off": "0"}),
    ("attempt failed", "open", "100.00", [fact(K.PAYMENT_FAILED, "0", n=2)],
     MoneyStatus.PAYMENT_FAILED, "0", "100.00", {}),
    # Paid after a failed attempt: paid (the ledger and Salesforce agree).
    ("failed then paid", "paid", "100.00",
     [fact(K.PAYMENT_FAILED, "0", n=1), fact(K.PAYMENT, "100.00", n=2)],
     MoneyStatus.PAID, "100.00", "0", {}),
    ("paid then a later failure", "paid", "100.00",
     [fact(K.PAYMENT, "100.00", n=1), fact(K.PAYMENT_FAILED, "0", n=2)],
     MoneyStatus.PAID, "100.00", "0", {}),
    ("zero invoice", "paid", "0.00", [], MoneyStatus.PAID, "0", "0", {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "total", "facts", "status", "paid", "balance", "extra"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_derive(doc, total, facts, status, paid, balance, extra) -> None:
    state = derive(
        currency="USD", document_status=doc, net=D(total), tax=D(0), total=D(total), facts=facts
    )
    assert state.status is status
    assert state.paid == D(paid)
    assert state.balance_due == D(balance)
    for name, value in extra.items():
        got = getattr(state, name)
        assert got == (value if isinstance(value, int) else D(value)), name


def test_taxed_total_and_zero_decimal_currencies() -> None:
    state = derive(
        currency="JPY",
        document_status=InvoiceStatus.OPEN,
        net=D("10000"),
        tax=D("1000"),
        total=D("11000"),
        facts=[fact(K.PAYMENT, "5000")],
    )
    assert (state.net, state.tax, state.total, state.balance_due) == (
        D(10000),
        D(1000),
        D(11000),
        D(6000),
    )
    kwd = derive(
        currency="KWD",
        document_status="open",
        net=D("1.000"),
        tax=D("0.050"),
        total=D("1.050"),
        facts=[fact(K.PAYMENT, "0.525")],
    )
    assert kwd.balance_due == D("0.525") and kwd.status is MoneyStatus.PARTIALLY_PAID


@pytest.mark.parametrize(
    ("status", "label"),
    [
        (MoneyStatus.OPEN, BillingStatus.INVOICED),
        (MoneyStatus.PARTIALLY_PAID, BillingStatus.PARTIALLY_PAID),
        (MoneyStatus.PAID, BillingStatus.PAID),
        (MoneyStatus.OVERPAID, BillingStatus.OVERPAID),
        (MoneyStatus.PARTIALLY_REFUNDED, BillingStatus.PARTIALLY_REFUNDED),
        (MoneyStatus.REFUNDED, BillingStatus.REFUNDED),
        (MoneyStatus.DISPUTED, BillingStatus.DISPUTED),
        (MoneyStatus.DISPUTE_LOST, BillingStatus.DISPUTE_LOST),
        (MoneyStatus.PAYMENT_FAILED, BillingStatus.PAYMENT_FAILED),
        (MoneyStatus.UNCOLLECTIBLE, BillingStatus.UNCOLLECTIBLE),
        (MoneyStatus.VOIDED, BillingStatus.VOIDED),
        (MoneyStatus.DELETED, BillingStatus.VOIDED),
        (None, BillingStatus.ERROR),
        ("written by an older release", BillingStatus.INVOICED),
    ],
)
def test_billing_status_mapping(status, label) -> None:
    assert billing_status(status) is label


def test_every_money_status_has_a_label() -> None:
    assert {billing_status(s) for s in MoneyStatus} <= set(BillingStatus)
