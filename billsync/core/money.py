"""Decimal-only money helpers.

Money is ``decimal.Decimal`` from the moment it leaves a vendor payload until a connector
converts it to the target's wire form (e.g. Stripe minor units, see
``connectors/stripe/amounts.py``). Nothing here accepts or returns a float: binary floats
cannot hold 0.10 exactly, and one float in a money path turns "the invoice matches the
deal" into "the invoice is off by a cent sometimes".

Minor-unit exponents come from the ISO 4217 table itself (the ``iso4217`` package ships
the maintenance agency's XML, versioned by its publication date), not from a hand-typed
table and not from CLDR. CLDR's currency "digits" (what ``babel.numbers.
get_currency_precision`` returns) is display data and disagrees with ISO 4217 for 15
currencies in babel 2.18 (CLDR says 0 where ISO says 2 for AFN, ALL, IRR, KPW, LAK, LBP,
MGA, MMK, RSD, SOS, SYP, YER; IQD is 0 in CLDR and 3 in ISO), and babel silently answers 2
for a code it has never heard of ("ZZZ", "usd"), which would hide typos.

Rounding is ROUND_HALF_UP (ties away from zero, symmetric for negatives): what
accountants, QuickBooks and Salesforce do. Python's default context would round half-even
and, worse, silently round products past 28 significant digits, so every computation here
runs in an exact local context that traps Inexact; only the explicit quantize step rounds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

from iso4217 import Currency

__all__ = [
    "DecimalLike",
    "MoneyError",
    "PrecisionError",
    "UnknownCurrencyError",
    "currency_exponent",
    "from_minor_units",
    "from_scaled_int",
    "known_currencies",
    "line_amount",
    "minor_unit",
    "normalise_currency",
    "parse_decimal",
    "quantize",
    "sum_amounts",
    "to_currency_precision",
    "to_minor_units",
    "to_minor_units_rounded",
    "to_places",
    "to_scaled_int",
]

DecimalLike = Decimal | int | str
"""What the helpers accept for an amount: Decimal, int or a numeric string. Never float."""

# Bounds on what parse_decimal accepts: no amount, price or quantity needs more than 30
# integer digits or 30 decimal places, and a bound stops "1e999999" from turning into a
# million-digit string or computation downstream.
_MAX_INTEGER_DIGITS = 30
_MAX_DECIMAL_PLACES = 30
# Significant digits for intermediate arithmetic. Quantity × unit price of any real
# invoice line needs well under 40; 60 leaves room while keeping "exact or raise".
_PRECISION = 60
_HUNDRED = Decimal(100)


class MoneyError(ValueError):
    """A money value or currency that billsync must not process."""


class UnknownCurrencyError(MoneyError):
    """The code is not a current ISO 4217 currency with a minor unit."""

    def __init__(self, code: object, reason: str = "is not a current ISO 4217 currency code"):
        self.code = code
        super().__init__(f"currency {code!r} {reason}")


class PrecisionError(MoneyError):
    """An amount has more decimal places than its currency allows."""


def _context(*, exact: bool) -> Context:
    traps = [InvalidOperation, DivisionByZero, Overflow]
    if exact:
        traps.append(Inexact)
    return Context(prec=_PRECISION, rounding=ROUND_HALF_UP, traps=traps)


def normalise_currency(code: object) -> str:
    """Return the upper-case ISO 4217 code, or raise UnknownCurrencyError.

    Accepts any letter case because vendors differ (Stripe sends ``"usd"``).
    """
    if not isinstance(code, str) or len(code) != 3 or not code.isascii() or not code.isalpha():
        raise UnknownCurrencyError(code, "is not a three-letter currency code")
    upper = code.upper()
    currency_exponent(upper)
    return upper


def currency_exponent(code: str) -> int:
    """ISO 4217 minor-unit exponent: USD 2, JPY 0, KWD 3, CLF 4.

    Raises UnknownCurrencyError for codes ISO 4217 does not list (including withdrawn
    ones such as HRK) and for codes without a minor unit (XAU, XDR, XTS, XXX ...): those
    are not invoiceable currencies.
    """
    if not isinstance(code, str):
        raise UnknownCurrencyError(code, "is not a three-letter currency code")
    return _exponent(code)


@functools.lru_cache(maxsize=512)
def _exponent(code: str) -> int:
    # Cached: every line of every invoice asks, and the ISO table lookup is an enum
    # construction. Errors are raised, so never cached.
    try:
        currency = Currency(code.upper())
    except ValueError:
        raise UnknownCurrencyError(code) from None
    exponent = currency.exponent
    if exponent is None:
        raise UnknownCurrencyError(code, "has no minor unit in ISO 4217 (fund/metal/test code)")
    return exponent


def known_currencies() -> frozenset[str]:
    """Every code for which ``currency_exponent`` answers (the invoiceable ISO codes)."""
    return frozenset(c.code for c in Currency if c.exponent is not None)


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of the currency: Decimal('0.01') for USD, Decimal('1') for JPY."""
    return _unit(currency_exponent(currency))


@functools.cache
def _unit(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def parse_decimal(value: object) -> Decimal:
    """Turn a vendor payload value (str, int or Decimal) into a finite Decimal.

    A float raises TypeError: by the time a float exists the exact value may already be
    lost, so the fix is upstream (decode JSON with ``parse_float=Decimal``, or
    python-quickbooks with ``use_decimal=True``). bool is rejected too (it is an int to
    Python, but True is never an amount). NaN, Infinity, unparsable strings and absurd
    magnitudes (over 30 integer digits or 30 decimal places) raise MoneyError.
    """
    if type(value) is Decimal:  # the common case first: every line is checked several times
        result = value
    elif isinstance(value, float):
        raise TypeError(
            f"float {value!r} given where an exact decimal is required; "
            "decode vendor JSON with parse_float=Decimal or pass a string"
        )
    elif isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"expected Decimal, int or numeric str, got {type(value).__name__}")
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    else:
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError(f"{value!r} is not a decimal number") from None
    if not result.is_finite():
        raise MoneyError(f"{value!r} is not a finite number")
    if result and result.adjusted() >= _MAX_INTEGER_DIGITS:
        raise MoneyError(f"{value!r} has more than {_MAX_INTEGER_DIGITS} integer digits")
    if int(result.as_tuple().exponent) < -_MAX_DECIMAL_PLACES:
        raise MoneyError(f"{value!r} has more than {_MAX_DECIMAL_PLACES} decimal places")
    return result


def quantize(amount: DecimalLike, currency: str) -> Decimal:
    """Round to the currency's minor unit, half up: quantize('2.675', 'USD') == 2.68."""
    return _quantize(parse_decimal(amount), currency)


def _quantize(value: Decimal, currency: str) -> Decimal:
    try:
        return value.quantize(minor_unit(currency), context=_context(exact=False))
    except InvalidOperation:
        raise MoneyError(f"{value} {currency} is too large to represent") from None


def to_places(amount: DecimalLike, places: int) -> Decimal:
    """The same value written with exactly ``places`` decimal places; never rounds.

    Raises PrecisionError when the value has non-zero digits beyond ``places``.
    """
    value = parse_decimal(amount)
    try:
        return value.quantize(Decimal(1).scaleb(-places), context=_context(exact=True))
    except Inexact:
        raise PrecisionError(
            f"{value} has more than {places} decimal places; round it explicitly first"
        ) from None
    except InvalidOperation:
        raise MoneyError(f"{value} is too large to represent") from None


def to_currency_precision(amount: DecimalLike, currency: str) -> Decimal:
    """The amount with exactly the currency's decimal places; PrecisionError, never rounding."""
    try:
        return to_places(amount, currency_exponent(currency))
    except PrecisionError:
        raise PrecisionError(
            f"{amount} has more decimal places than {currency} allows "
            f"({currency_exponent(currency)}); round it explicitly first"
        ) from None


def to_scaled_int(amount: DecimalLike, places: int) -> int:
    """amount × 10**places as an int, exactly (PrecisionError if that is not whole)."""
    value = to_places(amount, places)
    return int(value.scaleb(places, context=_context(exact=True)))


def from_scaled_int(n: int, places: int) -> Decimal:
    """n × 10**-places as a Decimal with exactly ``places`` decimal places."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"expected an int, got {type(n).__name__}")
    try:
        return Decimal(n).scaleb(-places, context=_context(exact=True))
    except (Inexact, InvalidOperation):
        raise MoneyError(f"{n} is too large to represent") from None


def to_minor_units(amount: DecimalLike, currency: str) -> int:
    """Exact conversion to integer minor units (cents, fils, yen).

    Raises PrecisionError instead of rounding when the amount has sub-minor-unit digits:
    a silent half-cent here would make the target's total differ from the intended one.
    """
    return to_scaled_int(to_currency_precision(amount, currency), currency_exponent(currency))


def to_minor_units_rounded(amount: DecimalLike, currency: str) -> int:
    """Like ``to_minor_units`` but rounds half up first; use only where rounding is intended."""
    return to_minor_units(quantize(amount, currency), currency)


def from_minor_units(n: int, currency: str) -> Decimal:
    """Integer minor units to a Decimal carrying exactly the currency's decimal places."""
    return from_scaled_int(n, currency_exponent(currency))


def line_amount(
    quantity: DecimalLike,
    unit_price: DecimalLike,
    discount_percent: DecimalLike | None,
    currency: str,
) -> Decimal:
    """quantity × unit_price × (1 − discount/100), computed exactly, then rounded half up.

    Rounding happens once, per line, at the end: this is how QuickBooks and Salesforce
    compute a line amount, and the invoice total is the sum of these rounded lines.
    """
    qty = parse_decimal(quantity)
    price = parse_decimal(unit_price)
    discount = Decimal(0) if discount_percent is None else parse_decimal(discount_percent)
    if not Decimal(0) <= discount <= _HUNDRED:
        raise MoneyError(f"discount {discount}% is outside 0-100")
    with localcontext(_context(exact=True)):
        try:
            exact = qty * price * (1 - discount / _HUNDRED)
        except Inexact:
            raise MoneyError(
                f"{qty} × {price} needs more than {_PRECISION} significant digits"
            ) from None
    return _quantize(exact, currency)


def sum_amounts(amounts: Iterable[DecimalLike], currency: str) -> Decimal:
    """Exact sum of amounts already at the currency's precision; 0 for none.

    Each amount must already be rounded to the minor unit (PrecisionError otherwise), so
    a total is always the sum of what each line shows, never a re-rounded raw sum.
    """
    total = minor_unit(currency) * 0
    with localcontext(_context(exact=True)):
        for amount in amounts:
            total += to_currency_precision(amount, currency)
    return total
