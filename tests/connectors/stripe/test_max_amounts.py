"""Stripe's maximum amounts are checked before any call, with the limit named."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from billsync.connectors.stripe.amounts import MAX_LINE_AMOUNT, StripeAmountError, check_maximum
from billsync.connectors.stripe.lines import LineProblem, plan_lines
from billsync.core.protocols import ConnectorError, ErrorClass
from tests.connectors.stripe.support import ConnectorEnv, draft


@pytest.mark.parametrize(
    ("amount", "currency", "limit"),
    [
        (MAX_LINE_AMOUNT + 1, "USD", "999,999,999.99 USD"),
        (MAX_LINE_AMOUNT + 1, "JPY", "99,999,999,999 JPY"),
        (MAX_LINE_AMOUNT + 10, "KWD", "99,999,999.999 KWD"),
        (-(MAX_LINE_AMOUNT + 1), "EUR", "999,999,999.99 EUR"),
    ],
)
def test_over_the_maximum_names_the_limit(amount: int, currency: str, limit: str) -> None:
    with pytest.raises(StripeAmountError, match=re.escape(f"maximum of {limit}")):
        check_maximum(amount, currency, what="the line amount", maximum=MAX_LINE_AMOUNT)


@pytest.mark.parametrize("currency", ["USD", "JPY", "KWD"])
def test_the_maximum_itself_is_accepted(currency: str) -> None:
    check_maximum(MAX_LINE_AMOUNT, currency, what="x", maximum=MAX_LINE_AMOUNT)
    assert Decimal(MAX_LINE_AMOUNT) > 0


def test_plan_lines_refuses_a_line_over_the_maximum() -> None:
    with pytest.raises(LineProblem, match=re.escape("maximum of 999,999,999.99 USD")) as caught:
        plan_lines(draft([("1", "1000000000.00", None)]))
    assert caught.value.field == "lines[0].amount"


def test_plan_lines_refuses_a_total_over_the_maximum() -> None:
    lines = [("1", "600000000.00", None), ("1", "600000000.00", None)]
    with pytest.raises(
        LineProblem, match=re.escape("invoice total 1,200,000,000.00 USD")
    ) as caught:
        plan_lines(draft(lines))
    assert caught.value.field == "total"


def test_a_too_large_deal_fails_validation_and_leaves_nothing(env: ConnectorEnv) -> None:
    target = env.connect().target
    with pytest.raises(ConnectorError) as caught:
        target.create_invoice(draft([("2", "999999999.99", None)]))
    assert caught.value.error_class is ErrorClass.INVALID_DATA
    assert "maximum of 999,999,999.99 USD" in str(caught.value)
    assert env.calls() == {} and env.invoices() == []
