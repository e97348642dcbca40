"""Decimal <-> Stripe integer amounts, with Stripe's per-currency quirks.

Stripe amounts are integers in the currency's "smallest unit", but Stripe's notion of
that unit is not always ISO 4217's. Source for every rule below:
https://docs.stripe.com/currencies ("Zero-decimal currencies", "Three-decimal
currencies", "Special cases"); api-facts.md §3.6 marks the special cases as unverified,
and so do the [?] notes here.

Conversion never rounds. An amount Stripe cannot represent exactly raises
StripeAmountError naming the currency and the rule, so the deal fails validation with a
reason instead of being invoiced for a different amount. Round explicitly
(``money.quantize``) before calling if rounding is what the business wants.

Codes are lower-case at this edge (Stripe's form) and upper-case everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billsync.core import money

__all__ = [
    "MAX_INVOICE_AMOUNT",
    "MAX_LINE_AMOUNT",
    "THREE_DECIMAL",
    "ZERO_DECIMAL",
    "StripeAmountError",
    "check_maximum",
    "from_stripe_amount",
    "stripe_currency",
    "to_stripe_amount",
]

# Amounts are whole units: 500 JPY is amount=500. MGA is 2-decimal in ISO 4217 but
# zero-decimal on Stripe, so MGA amounts with fractions cannot be charged at all.
# UGX is in this list; the docs' "special cases" add that UGX is represented as
# two-decimal (×100, ending in 00) for *payouts* only [?]; invoices use whole units.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
     "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)  # fmt: skip

# Amounts are in thousandths (5.124 KWD is 5124), but the last digit must be 0 for
# compatibility with card processing: 5.120 is fine, 5.124 is rejected. Stripe applies
# this to charges; we apply it to every amount since any invoice may be paid by card.
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

# ISK: zero-decimal in ISO 4217 and in practice, but "for backwards compatibility" Stripe
# still takes it as two-decimal with the decimals always 00: 5 ISK is amount=500.
# HUF and TWD: two-decimal on Stripe for charges and invoices (ISO agrees), but payouts
# must be whole units (amount divisible by 100). That is a payout/treasury concern, not an
# invoicing one, so fractional HUF/TWD invoice amounts are passed through [?: Stripe has
# at times documented rounding HUF/TWD charges to whole units; if it rejects them, make
# these currencies whole-unit here like ISK].
_WHOLE_UNITS_AS_TWO_DECIMAL = frozenset({"isk"})


# Largest amounts Stripe accepts, in the currency's Stripe integer (so per currency:
# 999,999,999.99 USD, 99,999,999,999 JPY, 99,999,999.990 KWD). Invoice items refuse
# more than 11 digits with `amount_too_large`; the invoice total is held to the same
# bound [?: Stripe documents no separate invoice maximum; charges are limited further,
# to 8 digits, by most payment methods, which is a payment concern, not invoicing].
# Checked before any call so a too-large deal leaves no draft behind.
MAX_LINE_AMOUNT = 99_999_999_999
MAX_INVOICE_AMOUNT = 99_999_999_999


class StripeAmountError(money.MoneyError):
    """An amount that Stripe cannot represent exactly in its currency."""


def check_maximum(amount: int, currency: str, *, what: str, maximum: int) -> None:
    """Raise StripeAmountError naming the limit when ``amount`` (Stripe integer) is over it."""
    if abs(amount) <= maximum:
        return
    code = stripe_currency(currency)
    limit = format(money.from_scaled_int(maximum, _rule(code).wire_exponent), ",f")
    shown = format(money.from_scaled_int(abs(amount), _rule(code).wire_exponent), ",f")
    raise StripeAmountError(
        f"{what} {shown} {code.upper()} is above Stripe's maximum of {limit} {code.upper()}"
    )


@dataclass(frozen=True, slots=True)
class _Rule:
    wire_exponent: int  # decimal places encoded in the integer
    granularity: int  # decimal places the amount may actually have
    why: str


def _rule(currency: str) -> _Rule:
    if currency in ZERO_DECIMAL:
        return _Rule(0, 0, "a zero-decimal currency on Stripe")
    if currency in THREE_DECIMAL:
        return _Rule(3, 2, "three-decimal on Stripe but the last digit must be 0")
    if currency in _WHOLE_UNITS_AS_TWO_DECIMAL:
        return _Rule(2, 0, "sent as two-decimal on Stripe but only whole units are allowed")
    # Every other currency is two-decimal on Stripe, whatever ISO says (IQD and LYD are
    # three-decimal in ISO; CLF and UYW four): amounts need to fit in cents.
    return _Rule(2, 2, "two-decimal on Stripe")


def stripe_currency(code: str) -> str:
    """The lower-case code Stripe expects; raises UnknownCurrencyError for non-ISO codes."""
    return money.normalise_currency(code).lower()


def to_stripe_amount(amount: money.DecimalLike, currency: str) -> int:
    """Convert an exact Decimal amount to Stripe's integer amount; never rounds."""
    code = stripe_currency(currency)
    rule = _rule(code)
    try:
        money.to_places(amount, rule.granularity)
    except money.PrecisionError:
        raise StripeAmountError(
            f"{amount} {code.upper()} cannot be sent to Stripe: {code.upper()} is {rule.why}, "
            f"so amounts must be multiples of {Decimal(1).scaleb(-rule.granularity)}"
        ) from None
    return money.to_scaled_int(amount, rule.wire_exponent)


def from_stripe_amount(amount: int, currency: str) -> Decimal:
    """Stripe integer amount to a Decimal with the ISO 4217 number of decimal places.

    Raises StripeAmountError if the value does not fit ISO precision (e.g. an ISK amount
    not ending in 00), which would mean our reading of Stripe's rules is wrong.
    """
    code = stripe_currency(currency)
    value = money.from_scaled_int(amount, _rule(code).wire_exponent)
    try:
        return money.to_currency_precision(value, code.upper())
    except money.PrecisionError:
        raise StripeAmountError(
            f"Stripe amount {amount} {code.upper()} has more precision than ISO 4217 allows"
        ) from None


# Presentment currencies Stripe supports (https://docs.stripe.com/currencies).
STRIPE_CURRENCIES = frozenset(
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
