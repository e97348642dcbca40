"""Currencies and amounts as Stripe counts them: integers in the currency's minor unit.

Source: https://docs.stripe.com/currencies (api-facts §3.6). All arithmetic is int or
Decimal. Where Stripe's rounding of fractional cents is not documented the sandbox rounds
half up, marked [?].
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sandbox.stripe.errors import StripeError, invalid

# Amounts are whole units: amount=500 is 500 JPY.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
     "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)  # fmt: skip
# Amounts are thousandths, and the last digit must be 0 (card networks settle to 0.010).
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

SUPPORTED = frozenset(
  {
      "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
      "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
      "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
      "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl",
      "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf",
      "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga", "mkd",
      "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok",
      "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd",
      "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl",
      "thb", "tjs", "tnd", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "uyu", "uzs", "vnd",
      "vuv", "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw",
  }
)  # fmt: skip
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
