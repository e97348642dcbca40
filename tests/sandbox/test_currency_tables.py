"""Stripe's currency facts, transcribed twice: once in the sandbox, once in the connector.

Both are typed from https://docs.stripe.com/currencies and neither imports the other, so
a slip in either (a missing currency, a wrong exponent) shows up here as a disagreement
instead of being wrong in both with every test green.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from billsync.connectors.stripe import amounts as connector
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.stripe import money as sandbox

# Codes only one side lists, as (sandbox only, connector only). Each entry is an open
# question for whoever fixes the other side; the test fails once it is resolved, so the
# entry goes away with the fix.
KNOWN_DIFFERENCES: dict[str, tuple[set[str], set[str]]] = {
    # XCG replaced ANG in 2025; recent copies of Stripe's list carry it [?].
    "supported": ({"xcg"}, set()),
}


@pytest.mark.parametrize(
    ("table", "ours", "theirs"),
    [
        ("supported", sandbox.SUPPORTED, connector.STRIPE_CURRENCIES),
        ("zero-decimal", sandbox.ZERO_DECIMAL, connector.ZERO_DECIMAL),
        ("three-decimal", sandbox.THREE_DECIMAL, connector.THREE_DECIMAL),
    ],
)
def test_the_two_tables_agree(table: str, ours: frozenset[str], theirs: frozenset[str]) -> None:
    assert (ours - theirs, theirs - ours) == KNOWN_DIFFERENCES.get(table, (set(), set()))


@pytest.mark.parametrize(
    ("amount", "currency", "stripe_amount"),
    [
        ("12.34", "usd", 1234),
        ("500", "jpy", 500),  # zero-decimal: no ×100
        ("3", "mga", 3),  # two-decimal in ISO 4217, zero-decimal on Stripe
        ("1000", "ugx", 1000),
        ("5.120", "kwd", 5120),  # three-decimal: thousandths
        ("5", "isk", 500),  # special case: two decimals, always 00
        ("10.45", "huf", 1045),  # whole units only for payouts, not charges
    ],
)
def test_both_convert_amounts_alike(amount: str, currency: str, stripe_amount: int) -> None:
    assert sandbox.to_minor_units(Decimal(amount), currency) == stripe_amount
    assert connector.to_stripe_amount(Decimal(amount), currency) == stripe_amount


@pytest.mark.parametrize(("amount", "currency"), [("0.5", "jpy"), ("1.001", "usd"), ("5.5", "isk")])
def test_the_sandbox_refuses_to_round_a_seed_price(amount: str, currency: str) -> None:
    with pytest.raises(ValueError, match="not a whole number"):
        sandbox.to_minor_units(Decimal(amount), currency)


@pytest.mark.parametrize(
    ("lookup_key", "unit_amount"),
    [
        ("PLAT-SUB-JPY", 1_812_000),  # 12,000.00 USD × 151 = 1,812,000 JPY, whole yen
        ("API-PACK-JPY", 15_085),  # 99.90 × 151 = 15,084.9, rounded to the yen
        ("PLAT-SUB-KWD", 3_684_000),  # 12,000.00 × 0.307 = 3,684.000 KWD in fils
        ("HW-GATEWAY-KWD", 276_300),  # 899.99 × 0.307 = 276.29693: 276.300, last digit 0
    ],
)
def test_generated_prices_are_what_stripe_accepts(lookup_key: str, unit_amount: int) -> None:
    seed = generate_seed(GenerateOptions(deals=1))
    price = next(p for p in seed["stripe"]["prices"] if p["lookup_key"] == lookup_key)
    assert price["unit_amount"] == unit_amount
    assert sandbox.check_amount(price["currency"], unit_amount, "unit_amount") == unit_amount
