"""Currencies and amounts as Stripe counts them: integers in the currency's minor unit.

Source: https://docs.stripe.com/currencies (api-facts §3.6). All arithmetic is int or
Decimal. Where Stripe's rounding of fractional cents is not documented the sandbox rounds
half up, marked [?].
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from billsync.connectors.stripe.amounts import STRIPE_CURRENCIES, THREE_DECIMAL
from billsync.sandbox.stripe.errors import StripeError, invalid

# Amounts are whole units: amount=500 is 500 JPY.
# Stripe's currency facts are shared with the connector: one list, one source.
SUPPORTED = STRIPE_CURRENCIES
MAX_AMOUNT = 99_999_999_999  # Stripe refuses amounts above 12 digits on invoice items


def check_currency(value: str, param: str) -> str:
    """Currency codes are three lower-case letters Stripe supports."""
    if len(value) != 3 or not value.isascii() or not value.islower() or not value.isalpha():
        raise invalid(
            param, f"Invalid currency: {value}. Currency codes are three lower-case letters."
        )
    if value not in SUPPORTED:
        raise invalid(
            param,
            f"Invalid currency: {value}. Stripe currently supports these currencies: "
            + ", ".join(sorted(SUPPORTED)),
        )
    return value


def check_amount(currency: str, amount: int, param: str) -> int:
    """Amounts Stripe cannot charge in this currency are refused, not rounded."""
    if abs(amount) > MAX_AMOUNT:
        raise invalid(param, f"Amount must be no more than {MAX_AMOUNT}.", "amount_too_large")
    if currency in THREE_DECIMAL and amount % 10:
        raise StripeError(
            f"Invalid amount {amount} for {currency.upper()}: amounts in three-decimal "
            "currencies are in thousandths and must be divisible by 10.",
            code="parameter_invalid_integer",
            param=param,
            saved=False,
        )
    return amount


def round_minor(value: Decimal) -> int:
    # [?] Stripe does not document how fractional minor units round; half up here.
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def line_amount(unit_amount_decimal: Decimal, quantity: Decimal) -> int:
    return round_minor(unit_amount_decimal * quantity)


def percent_of(amount: int, percent: Decimal) -> int:
    return round_minor(Decimal(amount) * percent / 100)
