from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billsync.core import money
from billsync.core.money import (
    MoneyError,
    PrecisionError,
    UnknownCurrencyError,
    currency_exponent,
    from_minor_units,
    known_currencies,
    line_amount,
    parse_decimal,
    quantize,
    sum_amounts,
    to_minor_units,
    to_minor_units_rounded,
)

CURRENCIES = sorted(known_currencies())
FAST = settings(max_examples=200, deadline=None)


def decimals_for(currency: str, *, max_units: int = 10**12) -> st.SearchStrategy[Decimal]:
    """Amounts at exactly the currency's precision."""
    exponent = currency_exponent(currency)
    return st.integers(-max_units, max_units).map(lambda n: Decimal(n).scaleb(-exponent))


def raw_decimals(places: int = 6) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=Decimal("-1e12"),
        max_value=Decimal("1e12"),
        places=places,
        allow_nan=False,
        allow_infinity=False,
    )


# --- exponents --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("CLP", 0),
        ("ISK", 0),
        ("UGX", 0),
        ("VND", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("IQD", 3),  # CLDR (babel) says 0: the reason ISO data is used
        ("MGA", 2),  # CLDR says 0
        ("HUF", 2),
        ("TWD", 2),
        ("IDR", 2),
        ("COP", 2),
        ("CLF", 4),
        ("usd", 2),
    ],
)
def test_iso_4217_exponents(code, exponent):
    assert currency_exponent(code) == exponent


@pytest.mark.parametrize("code", ["ZZZ", "HRK", "XAU", "XXX", "XTS", "XDR", "US", "", "USDX"])
def test_unknown_or_non_monetary_codes_raise_naming_the_code(code):
    with pytest.raises(UnknownCurrencyError, match=repr(code)) as info:
        currency_exponent(code)
    assert info.value.code == code


def test_unknown_currency_propagates_from_every_helper():
    for call in (
        lambda: quantize("1", "ZZZ"),
        lambda: to_minor_units("1", "ZZZ"),
        lambda: from_minor_units(1, "ZZZ"),
        lambda: line_amount(1, 1, None, "ZZZ"),
        lambda: sum_amounts([], "ZZZ"),
    ):
        with pytest.raises(UnknownCurrencyError):
            call()


def test_known_currencies_is_the_current_iso_list():
    assert {"USD", "EUR", "JPY", "KWD", "GBP", "CHF"} <= known_currencies()
    assert "XAU" not in known_currencies()
    assert len(known_currencies()) > 150


# --- parse_decimal ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.50", Decimal("12.50")),
        (" 7 ", Decimal(7)),
        (3, Decimal(3)),
        (Decimal("-0.001"), Decimal("-0.001")),
        ("1E+3", Decimal(1000)),
    ],
)
def test_parse_decimal_accepts_exact_inputs(value, expected):
    result = parse_decimal(value)
    assert result == expected
    assert type(result) is Decimal


@pytest.mark.parametrize("value", [0.1, 1.0, math.nan, math.inf])
def test_parse_decimal_rejects_float_with_a_clear_message(value):
    with pytest.raises(TypeError, match="float"):
        parse_decimal(value)


@pytest.mark.parametrize("value", [True, None, [1], b"1"])
def test_parse_decimal_rejects_non_numbers(value):
    with pytest.raises(TypeError):
        parse_decimal(value)


@pytest.mark.parametrize(
    "value",
    ["NaN", "sNaN", "Infinity", "-inf", Decimal("NaN"), "abc", "", "1,000", "1e31", "1e-31"],
)
def test_parse_decimal_rejects_non_finite_garbage_and_absurd_magnitudes(value):
    with pytest.raises(MoneyError):
        parse_decimal(value)


# --- quantize / minor units -------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("2.675", "USD", "2.68"),  # half up, where float would give 2.67
        ("2.665", "USD", "2.67"),  # half up, not half even
        ("-2.675", "USD", "-2.68"),  # ties away from zero for credits
        ("0.5", "JPY", "1"),
        ("1.0005", "KWD", "1.001"),
        ("1E+3", "USD", "1000.00"),
    ],
)
def test_quantize_rounds_half_up(amount, currency, expected):
    result = quantize(amount, currency)
    assert str(result) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.34", "USD", 1234),
        ("12.3", "USD", 1230),
        ("500", "JPY", 500),
        ("500.000", "JPY", 500),
        ("5.125", "KWD", 5125),
        ("-1.10", "EUR", -110),
        ("0", "BHD", 0),
    ],
)
def test_to_minor_units_exact(amount, currency, minor):
    assert to_minor_units(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"), [("12.345", "USD"), ("1.5", "JPY"), ("0.0001", "KWD")]
)
def test_to_minor_units_refuses_to_round(amount, currency):
    with pytest.raises(PrecisionError, match=currency):
        to_minor_units(amount, currency)


def test_to_minor_units_rounded_is_the_explicit_variant():
    assert to_minor_units_rounded("12.345", "USD") == 1235
    assert to_minor_units_rounded("1.5", "JPY") == 2


def test_from_minor_units_carries_the_currency_places():
    assert str(from_minor_units(1234, "USD")) == "12.34"
    assert str(from_minor_units(0, "USD")) == "0.00"
    assert str(from_minor_units(5, "JPY")) == "5"
    assert str(from_minor_units(-5125, "KWD")) == "-5.125"


@pytest.mark.parametrize("value", [12.0, True, "12", Decimal(12)])
def test_from_minor_units_takes_only_int(value):
    with pytest.raises(TypeError):
        from_minor_units(value, "USD")


def test_float_rejected_by_every_helper():
    f: Any = 1.5  # typed Any: mypy already refuses a float literal here
    for call in (
        lambda: quantize(f, "USD"),
        lambda: to_minor_units(f, "USD"),
        lambda: to_minor_units_rounded(f, "USD"),
        lambda: line_amount(f, 1, None, "USD"),
        lambda: line_amount(1, f, None, "USD"),
        lambda: line_amount(1, 1, f, "USD"),
        lambda: sum_amounts([Decimal(1), f], "USD"),
        lambda: money.to_places(f, 2),
        lambda: money.to_currency_precision(f, "USD"),
    ):
        with pytest.raises(TypeError, match="float"):
            call()


@FAST
@given(st.sampled_from(CURRENCIES), st.integers(-(10**15), 10**15))
def test_minor_units_round_trip_every_iso_currency(currency, n):
    amount = from_minor_units(n, currency)
    assert type(amount) is Decimal
    assert -int(amount.as_tuple().exponent) == currency_exponent(currency)
    back = to_minor_units(amount, currency)
    assert type(back) is int
    assert back == n


@FAST
@given(st.data())
def test_decimal_round_trip_every_iso_currency(data):
    currency = data.draw(st.sampled_from(CURRENCIES))
    amount = data.draw(decimals_for(currency))
    assert from_minor_units(to_minor_units(amount, currency), currency) == amount


@FAST
@given(st.sampled_from(CURRENCIES), raw_decimals())
def test_quantize_is_idempotent_and_within_half_a_unit(currency, amount):
    once = quantize(amount, currency)
    assert type(once) is Decimal
    assert quantize(once, currency) == once
    assert abs(once - amount) <= money.minor_unit(currency) / 2
    assert to_minor_units(once, currency) == to_minor_units_rounded(amount, currency)


# --- line amounts and sums --------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "price", "discount", "currency", "expected"),
    [
        ("3", "19.99", "15", "USD", "50.97"),  # 50.9745
        ("1", "0.125", None, "USD", "0.13"),  # tie rounds up
        ("1.5", "0.333", "0", "USD", "0.50"),
        ("10", "99.99", "100", "EUR", "0.00"),
        ("7", "1234", "12.5", "JPY", "7558"),  # 7557.25
        ("2", "1.2345", "10", "KWD", "2.222"),  # 2.2221
        ("-1", "10.005", None, "USD", "-10.01"),  # credit line, ties away from zero
    ],
)
def test_line_amount_table(quantity, price, discount, currency, expected):
    assert str(line_amount(quantity, price, discount, currency)) == expected


@pytest.mark.parametrize("discount", ["-0.01", "100.01", "150"])
def test_line_amount_rejects_discount_outside_0_100(discount):
    with pytest.raises(MoneyError, match="0-100"):
        line_amount(1, 1, discount, "USD")


@FAST
@given(
    st.sampled_from(CURRENCIES),
    st.decimals(min_value=0, max_value=10**6, places=4),
    raw_decimals(places=4),
    st.one_of(st.none(), st.decimals(min_value=0, max_value=100, places=2)),
)
def test_line_amount_is_the_formula_rounded_half_up(currency, quantity, price, discount):
    result = line_amount(quantity, price, discount, currency)
    d = discount if discount is not None else Decimal(0)
    with localcontext(prec=100):
        exact = quantity * price * (1 - d / 100)
        expected = exact.quantize(money.minor_unit(currency), rounding=ROUND_HALF_UP)
    assert result == expected
    assert type(result) is Decimal
    assert quantize(result, currency) == result


def test_line_amount_is_exact_beyond_default_context_precision():
    # 29 significant digits: Python's default 28-digit context would first round the
    # product to ...345.675 and then to .68; the exact value rounds to .67.
    quantity = Decimal("1234567890123456789012345.6749")
    assert quantize(quantity * 1, "USD") == Decimal("1234567890123456789012345.68")
    assert line_amount(quantity, 1, None, "USD") == Decimal("1234567890123456789012345.67")
    with localcontext(prec=100):
        exact = Decimal("123456789012345.123") * Decimal("10000000000.001")
    assert line_amount("123456789012345.123", "10000000000.001", None, "USD") == quantize(
        exact, "USD"
    )


@FAST
@given(st.data())
def test_sum_of_line_amounts_is_exact(data):
    currency = data.draw(st.sampled_from(CURRENCIES))
    amounts = data.draw(st.lists(decimals_for(currency), max_size=30))
    total = sum_amounts(amounts, currency)
    assert type(total) is Decimal
    assert total == sum(amounts, Decimal(0))
    assert to_minor_units(total, currency) == sum(to_minor_units(a, currency) for a in amounts)


def test_sum_amounts_of_nothing_is_zero_at_currency_places():
    assert str(sum_amounts([], "USD")) == "0.00"
    assert str(sum_amounts([], "JPY")) == "0"


def test_sum_amounts_refuses_unrounded_amounts():
    with pytest.raises(PrecisionError):
        sum_amounts([Decimal("1.00"), Decimal("0.005")], "USD")
