from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billsync.connectors.stripe.amounts import (
    THREE_DECIMAL,
    ZERO_DECIMAL,
    StripeAmountError,
    from_stripe_amount,
    stripe_currency,
    to_stripe_amount,
)
from billsync.core import money

FAST = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize(
    ("amount", "currency", "wire"),
    [
        ("12.34", "USD", 1234),
        ("0.01", "USD", 1),
        ("-5.00", "USD", -500),  # negative invoice item (discount line)
        ("99.90", "EUR", 9990),
        ("1000", "EUR", 100000),
        ("500", "JPY", 500),  # zero-decimal: whole amount
        ("500.00", "JPY", 500),
        ("5.120", "KWD", 5120),  # three-decimal, last digit 0
        ("5.12", "KWD", 5120),
        ("1.5", "BHD", 1500),
        ("5", "ISK", 500),  # two-decimal on the wire, whole units only
        ("1250", "ISK", 125000),
        ("10.55", "HUF", 1055),  # two-decimal for charges
        ("3000", "HUF", 300000),
    ],
)
def test_to_stripe_amount_table(amount, currency, wire):
    result = to_stripe_amount(Decimal(amount), currency)
    assert result == wire
    assert type(result) is int


@pytest.mark.parametrize(
    ("amount", "currency", "why"),
    [
        ("0.5", "JPY", "zero-decimal"),
        ("5.124", "KWD", "last digit must be 0"),
        ("0.001", "BHD", "last digit must be 0"),
        ("5.5", "ISK", "whole units"),
        ("12.345", "USD", "two-decimal"),
        ("10.555", "HUF", "two-decimal"),
        ("100.50", "MGA", "zero-decimal"),  # ISO 2, Stripe 0
        ("1.0001", "CLF", "two-decimal"),  # ISO 4, Stripe 2
    ],
)
def test_to_stripe_amount_never_rounds(amount, currency, why):
    with pytest.raises(StripeAmountError, match=why) as info:
        to_stripe_amount(amount, currency)
    assert currency in str(info.value)


@pytest.mark.parametrize(
    ("wire", "currency", "amount"),
    [
        (1234, "usd", "12.34"),
        (9990, "eur", "99.90"),
        (500, "jpy", "500"),
        (5120, "kwd", "5.120"),
        (1500, "bhd", "1.500"),
        (500, "isk", "5"),
        (1055, "huf", "10.55"),
        (1000, "mga", "1000.00"),
        (7, "iqd", "0.070"),
    ],
)
def test_from_stripe_amount_table(wire, currency, amount):
    result = from_stripe_amount(wire, currency)
    assert str(result) == amount  # ISO places, so it compares and prints like canonical


def test_from_stripe_amount_refuses_sub_unit_isk():
    with pytest.raises(StripeAmountError, match="ISK"):
        from_stripe_amount(550, "isk")


@pytest.mark.parametrize("value", [12.0, 1.5, True, "1234", Decimal(1234)])
def test_from_stripe_amount_takes_only_int(value):
    with pytest.raises(TypeError):
        from_stripe_amount(value, "usd")


def test_float_is_rejected_at_the_edge():
    with pytest.raises(TypeError, match="float"):
        to_stripe_amount(12.34, "usd")  # type: ignore[arg-type]


def test_currency_codes_are_lower_case_at_the_edge():
    assert stripe_currency("USD") == "usd"
    assert stripe_currency("jpy") == "jpy"
    with pytest.raises(money.UnknownCurrencyError):
        stripe_currency("ZZZ")


def test_stripe_lists_are_lower_case_iso_codes():
    assert len(ZERO_DECIMAL) == 16 and len(THREE_DECIMAL) == 5
    for code in ZERO_DECIMAL | THREE_DECIMAL:
        assert code == code.lower()
        money.currency_exponent(code)
    for code in THREE_DECIMAL:
        assert money.currency_exponent(code) == 3


SUPPORTED_SAMPLE = sorted(
    ZERO_DECIMAL | THREE_DECIMAL | {"usd", "eur", "gbp", "isk", "huf", "twd", "chf", "inr"}
)


@FAST
@given(st.sampled_from(SUPPORTED_SAMPLE), st.integers(-(10**12), 10**12))
def test_round_trip_from_the_wire(currency, n):
    if currency in THREE_DECIMAL:
        n *= 10
    if currency == "isk":
        n *= 100
    amount = from_stripe_amount(n, currency)
    assert type(amount) is Decimal
    assert to_stripe_amount(amount, currency) == n


@FAST
@given(st.sampled_from(SUPPORTED_SAMPLE), st.integers(-(10**12), 10**12))
def test_round_trip_from_whole_units(currency, units):
    # Whole units are representable in every currency Stripe supports.
    amount = Decimal(units)
    assert from_stripe_amount(to_stripe_amount(amount, currency), currency) == amount
