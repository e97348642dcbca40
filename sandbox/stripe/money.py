"""Currencies and amounts as Stripe counts them: integers in the currency's minor unit.

The sandbox keeps its own transcription of Stripe's currency facts, typed from
https://docs.stripe.com/currencies ("Supported presentment currencies", "Zero-decimal
currencies", "Three-decimal currencies", "Special cases"; summarised in api-facts.md §3.6),
never imported from the connector: if both read the same table, an error in it would be
wrong in both and no test would notice. tests/sandbox/test_currency_tables.py holds the
two transcriptions against each other. All arithmetic is int or Decimal. Where Stripe's
rounding of fractional cents is not documented the sandbox rounds half up, marked [?].
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from billsync.sandbox.stripe.errors import StripeError, invalid

# Presentment currencies, lower-case as the API takes them. [?] XCG, the Caribbean
# guilder that replaced ANG in 2025, is in recent copies of the list (ANG still beside
# it); the connector's transcription does not have it yet.
SUPPORTED = frozenset(
    {
        "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn",
        "bam", "bbd", "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp",
        "byn", "bzd",
        "cad", "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk",
        "djf", "dkk", "dop", "dzd",
        "egp", "etb", "eur",
        "fjd", "fkp",
        "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd",
        "hkd", "hnl", "htg", "huf",
        "idr", "ils", "inr", "isk",
        "jmd", "jod", "jpy",
        "kes", "kgs", "khr", "kmf", "krw", "kwd", "kyd", "kzt",
        "lak", "lbp", "lkr", "lrd", "lsl",
        "mad", "mdl", "mga", "mkd", "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr",
        "mzn",
        "nad", "ngn", "nio", "nok", "npr", "nzd",
        "omr",
        "pab", "pen", "pgk", "php", "pkr", "pln", "pyg",
        "qar",
        "ron", "rsd", "rub", "rwf",
        "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl",
        "thb", "tjs", "tnd", "top", "try", "ttd", "twd", "tzs",
        "uah", "ugx", "usd", "uyu", "uzs",
        "vnd", "vuv",
        "wst",
        "xaf", "xcd", "xcg", "xof", "xpf",
        "yer",
        "zar", "zmw",
    }
)  # fmt: skip

# Amounts are whole units: amount=500 is 500 JPY. MGA is two-decimal in ISO 4217 and
# zero-decimal here; UGX is zero-decimal for charges (its payout quirk is not emulated).
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
     "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)  # fmt: skip

# Amounts are in thousandths (5.120 KWD is amount=5120), and the last digit must be 0
# "to ensure compatibility with Stripe's payments partners": 5124 is refused.
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

# Special cases. ISK is zero-decimal in ISO 4217, but "for backwards compatibility" Stripe
# takes it as two-decimal with the decimals always 00: 5 ISK is amount=500. HUF and TWD
# are two-decimal for charges and whole units only for payouts, which are not emulated.
# Every other currency is two-decimal on Stripe, whatever ISO says (IQD is three there).
_TWO_DECIMAL_IN_WHOLE_UNITS = frozenset({"isk"})

MAX_AMOUNT = 99_999_999_999  # Stripe refuses amounts above 11 digits on invoice items


def decimal_places(currency: str) -> int:
    """How many decimal places Stripe's integer amount carries in this currency."""
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def to_minor_units(amount: Decimal, currency: str) -> int:
    """The integer Stripe takes for an exact amount (`currency` lower-case); never rounds.

    For the sandbox's own seeds: an amount with more decimals than Stripe's unit (or an
    ISK amount with a fraction) raises ValueError instead of becoming a different price.
    """
    places = 0 if currency in _TWO_DECIMAL_IN_WHOLE_UNITS else decimal_places(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise ValueError(f"{amount} {currency.upper()} is not a whole number of Stripe units")
    return int(amount.scaleb(decimal_places(currency)))


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
