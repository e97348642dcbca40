"""Property: whatever the draft, the lines we send make Stripe's total equal the draft's
total to the minor unit, without Stripe ever having to round (USD, JPY, KWD)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billsync.connectors.stripe.amounts import to_stripe_amount
from billsync.connectors.stripe.lines import LineProblem, plan_lines
from billsync.core import money
from billsync.core.canonical import InvoiceDraft, InvoiceLine
from billsync.core.protocols import ConnectorError, ErrorClass
from tests.connectors.stripe.support import ConnectorEnv, customer, draft

CURRENCIES = ("USD", "JPY", "KWD")
PLACES = {"USD": 2, "JPY": 0, "KWD": 3}


@st.composite
def drafts(draw: st.DrawFn, currency: str | None = None) -> InvoiceDraft:
    code = currency or draw(st.sampled_from(CURRENCIES))
    places = PLACES[code]
    count = draw(st.integers(1, 8))
    lines = []
    for _ in range(count):
        quantity = draw(
            st.one_of(
                st.integers(1, 40).map(str),
                st.decimals(min_value=Decimal("0.001"), max_value=Decimal("50"), places=3).map(str),
            )
        )
        unit_places = draw(st.sampled_from((places, places, places + 2)))
        price = draw(
            st.decimals(min_value=Decimal(0), max_value=Decimal("99999"), places=unit_places)
        )
        discount = draw(st.sampled_from((None, None, "5", "10", "12.5", "33.33", "100")))
        lines.append((quantity, str(price), discount))
    return draft(lines, currency=code)


def stripe_line_amount(params: dict[str, Any]) -> int:
    """Stripe's arithmetic for one add_lines entry; fails if Stripe would have to round."""
    if "amount" in params:
        return int(params["amount"])
    price = params["price_data"]
    quantity = (
        Decimal(params["quantity_decimal"])
        if "quantity_decimal" in params
        else Decimal(params["quantity"])
    )
    if "unit_amount" in price:
        assert isinstance(price["unit_amount"], int) and price["unit_amount"] >= 0
        unit = Decimal(price["unit_amount"])
    else:
        unit = Decimal(price["unit_amount_decimal"])
        assert -unit.normalize().as_tuple().exponent <= 12  # type: ignore[operator]
    product = unit * quantity
    assert product == product.to_integral_value(), "Stripe would have to round this line"
    return int(product)


@settings(max_examples=400, deadline=None)
@given(drafts())
def test_stripe_total_equals_the_draft_total(planned: InvoiceDraft) -> None:
    try:
        lines = plan_lines(planned)
    except LineProblem as problem:
        # Only a three-decimal line not ending in 0 (or a fraction of a yen) may fail.
        index = int(problem.field.split("[")[1].split("]")[0])
        with pytest.raises(money.MoneyError):
            to_stripe_amount(planned.lines[index].amount, planned.currency)
        return
    computed = [stripe_line_amount(line.params) for line in lines]
    assert computed == [line.amount for line in lines]
    assert sum(computed) == to_stripe_amount(planned.total, planned.currency)
    for line in lines:
        price = line.params.get("price_data")
        if planned.currency == "KWD" and price and "unit_amount" in price:
            assert price["unit_amount"] % 10 == 0
        assert line.params["metadata"]["billsync_line"] == str(line.index)


def test_the_three_forms() -> None:
    planned = draft(
        [("3", "19.99", None), ("2.5", "10.00", None), ("3", "99.90", "12.5"), ("1", "0.005", None)]
    )
    whole, fractional, discounted, tiny = (line.params for line in plan_lines(planned))
    assert (whole["quantity"], whole["price_data"]["unit_amount"]) == (3, 1999)
    assert "description" in whole and "×" not in whole["description"]
    assert (fractional["quantity_decimal"], fractional["price_data"]["unit_amount_decimal"]) == (
        "2.5",
        "1000",
    )
    assert (discounted["quantity"], discounted["price_data"]["unit_amount"]) == (1, 26224)
    assert discounted["description"] == "Line 2 (3 × 99.90 USD, less 12.5%)"
    assert (tiny["quantity"], tiny["price_data"]["unit_amount"]) == (1, 1)  # 0.005 → 0.01


def test_credit_lines_service_dates_and_tax_rates() -> None:
    base = draft([("2", "50.00", None)])
    credit = InvoiceLine.priced(
        "USD",
        item_ref="prod_X",
        description="Goodwill credit",
        quantity=Decimal(-1),
        unit_price=Decimal("30"),
        service_date=date(2026, 11, 1),
        tax_rates=("txr_1",),
    )
    fields = {k: getattr(base, k) for k in type(base).model_fields if k != "total"}
    planned = InvoiceDraft.with_total(**{**fields, "lines": (*base.lines, credit)})
    assert planned.total == Decimal("70.00")
    _, line = plan_lines(planned)
    assert line.amount == -3000
    assert line.params == {
        "amount": -3000,
        "description": "Goodwill credit (-1 × 30.00 USD)",
        "metadata": {"billsync_line": "1"},
        "period": {"start": 1793491200, "end": 1793491200},
        "tax_rates": ["txr_1"],
    }


def test_too_many_lines_and_dry_run_refs_are_refused() -> None:
    with pytest.raises(LineProblem, match="at most 250"):
        plan_lines(draft([("1", "1.00", None)] * 251))
    with pytest.raises(LineProblem, match="never looked up"):
        plan_lines(draft(product="unverified:lookup_key:PLAT-SUB-USD"))


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drafts())
def test_sandbox_totals_match_random_drafts(env_once: ConnectorEnv, planned: InvoiceDraft) -> None:
    salt = uuid.uuid4().hex[:12]  # a new deal each example, even while shrinking
    target = env_once.connect().target
    known = target.ensure_customer(customer())
    planned = planned.model_copy(
        update={"customer": known, "deal_id": f"006P{salt}", "idempotency_key": f"prop-{salt}"}
    )
    try:
        plan_lines(planned)
    except LineProblem:
        event("not representable: refused before any call")
        with pytest.raises(ConnectorError) as caught:
            target.create_invoice(planned)
        assert caught.value.error_class is ErrorClass.INVALID_DATA
        return
    ref = target.create_invoice(planned)
    event(f"invoiced in {planned.currency}")
    assert ref.total == planned.total
    assert target.take_discrepancies() == []


@pytest.fixture(scope="module")
def env_once(sandbox: ConnectorEnv) -> ConnectorEnv:
    sandbox.fresh()
    return sandbox
