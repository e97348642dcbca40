"""Deal → draft: good deals map exactly; each bad deal fails alone with one clear reason."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billsync.core import money
from billsync.core.canonical import Account
from billsync.mappings.loader import LoadedMapping
from billsync.mappings.plan import Planned, Rejected, plan_invoice
from tests.mappings.conftest import FakeCatalog, make_deal, make_line, make_planner, qbo_catalog


def test_good_quickbooks_deal(mapping: LoadedMapping) -> None:
    lines = (
        make_line(1),
        make_line(
            2,
            product_code="SEAT",
            quantity=Decimal(5),
            unit_price=Decimal("48.50"),
            discount_percent=None,
        ),
    )
    result = plan_invoice(make_deal(lines), make_planner(mapping))
    assert isinstance(result, Planned), result
    draft = result.draft
    assert draft.target == "quickbooks"
    assert [line.item_ref for line in draft.lines] == ["11", "12"]
    assert [line.amount for line in draft.lines] == [Decimal("180.00"), Decimal("242.50")]
    assert draft.total == Decimal("422.50")
    assert draft.doc_number == "006000000000001AAA"
    assert draft.terms == "Net 30"
    assert draft.memo == "O'Brien & Sons — renewal"
    assert draft.customer.name == "O'Brien & Sons"
    assert draft.customer.email == "ap@obrien.example"
    assert draft.idempotency_key.startswith("billsync:quickbooks:006000000000001AAA:")
    assert draft.lines[0].service_date is not None


def test_good_stripe_deal_in_jpy(mapping: LoadedMapping) -> None:
    line = make_line(
        1, unit_price=Decimal("15100"), quantity=Decimal(3), discount_percent=Decimal("12.5")
    )
    deal = make_deal((line,), currency="JPY", target_hint="stripe")
    result = plan_invoice(deal, make_planner(mapping))
    assert isinstance(result, Planned), result
    assert result.draft.total == Decimal("39638")  # 45300 × 0.875 = 39637.5 → half up
    assert result.draft.days_until_due == 30
    assert result.draft.lines[0].item_ref == "prod_PLAT"


def test_routing_is_case_insensitive_and_falls_back_to_default(mapping: LoadedMapping) -> None:
    planner = make_planner(mapping, default_target="stripe")
    assert plan_invoice(make_deal(target_hint="qbo"), planner).draft.target == "quickbooks"  # type: ignore[union-attr]
    assert plan_invoice(make_deal(target_hint="  "), planner).draft.target == "stripe"  # type: ignore[union-attr]


def test_ad_hoc_stripe_product_by_code(mapping: LoadedMapping) -> None:
    deal = make_deal((make_line(1, product_code="CONSULT"),), target_hint="Stripe")
    result = plan_invoice(deal, make_planner(mapping))
    assert isinstance(result, Planned), result
    assert result.draft.lines[0].item_ref == "prod_CONS"


def test_deal_without_products_single_line_when_configured(
    mapping: LoadedMapping, tmp_path: Any
) -> None:
    from billsync.mappings.loader import load_mappings

    custom = tmp_path / "custom.yaml"
    custom.write_text("deals_without_products:\n  action: single_line\n  product_code: PLAT-SUB\n")
    loaded = load_mappings([custom])
    deal = make_deal((), amount=Decimal("5000.00"))
    result = plan_invoice(deal, make_planner(loaded))
    assert isinstance(result, Planned), result
    assert result.draft.total == Decimal("5000.00")
    assert len(result.draft.lines) == 1


BAD_DEALS: list[tuple[str, dict[str, Any], str, str]] = [
    # (case, deal overrides, field fragment, reason fragment)
    ("unknown platform", {"target_hint": "Xero"}, "Billing_Platform__c", "'Xero' is not a known"),
    ("no platform, no default", {"target_hint": None}, "Billing_Platform__c", "is empty"),
    ("no products", {"lines": ()}, "OpportunityLineItems", "has no products"),
    (
        "no product code",
        {"lines": (make_line(1, product_code=None),)},
        "ProductCode",
        "has no product code",
    ),
    (
        "unknown product",
        {"lines": (make_line(1, product_code="SKU-9"),)},
        "ProductCode",
        "'SKU-9' has no QuickBooks match",
    ),
    (
        "inactive item",
        {"lines": (make_line(1, product_code="OLD-SKU"),)},
        "ProductCode",
        "is inactive",
    ),
    (
        "zero quantity",
        {"lines": (make_line(1, quantity=Decimal(0)),)},
        "Quantity",
        "quantity 0 is not positive",
    ),
    (
        "negative quantity",
        {"lines": (make_line(1, quantity=Decimal(-2)),)},
        "Quantity",
        "is not positive",
    ),
    (
        "negative price",
        {"lines": (make_line(1, unit_price=Decimal("-5")),)},
        "UnitPrice",
        "is negative",
    ),
    (
        "discount over 100",
        {"lines": (make_line(1, discount_percent=Decimal("120")),)},
        "Discount",
        "outside 0–100%",
    ),
    (
        "negative discount",
        {"lines": (make_line(1, discount_percent=Decimal("-1")),)},
        "Discount",
        "outside 0–100%",
    ),
    (
        "amount mismatch",
        {"amount": Decimal("999.00")},
        "Opportunity.Amount",
        "differs from the sum of its lines",
    ),
    (
        "zero total",
        {"lines": (make_line(1, unit_price=Decimal(0)),), "amount": Decimal(0)},
        "Opportunity.Amount",
        "add up to zero",
    ),
    (
        "full discount",
        {"lines": (make_line(1, discount_percent=Decimal(100)),), "amount": Decimal(0)},
        "Opportunity.Amount",
        "add up to zero",
    ),
    (
        "currency QuickBooks cannot bill",
        {"currency": "EUR", "lines": (make_line(1),)},
        "CurrencyIsoCode",
        "cannot invoice in EUR",
    ),
    (
        "currency Stripe cannot bill",
        {"currency": "GBP", "target_hint": "Stripe"},
        "CurrencyIsoCode",
        "cannot invoice in GBP",
    ),
    ("unknown terms", {"terms": "Net 45"}, "terms", "'Net 45' are not known"),
    ("terms missing in QuickBooks", {"terms": "Net 60"}, "terms", "('Net 60' does not exist)"),
    (
        "Stripe price missing for currency",
        {"currency": "EUR", "target_hint": "Stripe"},
        "ProductCode",
        "'PLAT-SUB' has no Stripe match",
    ),
    (
        "blank account name",
        {"account": Account(id="001000000000002AAA", name="   ")},
        "Account.Name",
        "no usable name",
    ),
    (
        "quantity with 3 decimals and mismatch",
        {"lines": (make_line(1, quantity=Decimal("1.333")),), "amount": Decimal("120.00")},
        "Opportunity.Amount",
        "differs",
    ),
]


@pytest.mark.parametrize(
    ("case", "overrides", "field", "reason"), BAD_DEALS, ids=[c[0] for c in BAD_DEALS]
)
def test_each_bad_deal_fails_alone_with_one_clear_reason(
    mapping: LoadedMapping, case: str, overrides: dict[str, Any], field: str, reason: str
) -> None:
    good_before = make_deal(id="006000000000000GOOD")
    good_after = make_deal((make_line(1, product_code="SEAT"),), id="006000000000009GOOD")
    bad = make_deal(**{**{"id": "006000000000005BAD"}, **overrides})
    planner = make_planner(mapping)
    results = [plan_invoice(deal, planner) for deal in (good_before, bad, good_after)]
    assert isinstance(results[0], Planned) and isinstance(results[2], Planned)
    rejected = results[1]
    assert isinstance(rejected, Rejected), case
    assert len(rejected.rejections) == 1, [r.message() for r in rejected.rejections]
    (problem,) = rejected.rejections
    assert problem.deal_id == "006000000000005BAD"
    assert field in problem.field, problem.message()
    assert reason in problem.reason, problem.message()
    assert problem.fix  # every rejection says what to do
    assert "006000000000005BAD" in problem.message()


def test_several_problems_are_all_reported(mapping: LoadedMapping) -> None:
    lines = (make_line(1, product_code="SKU-9"), make_line(2, quantity=Decimal(0)))
    result = plan_invoice(make_deal(lines, amount=Decimal(1)), make_planner(mapping))
    assert isinstance(result, Rejected)
    assert len(result.rejections) == 2


def test_disabled_target(mapping: LoadedMapping) -> None:
    planner = make_planner(mapping, catalogs={"quickbooks": qbo_catalog()})
    result = plan_invoice(make_deal(target_hint="Stripe"), planner)
    assert isinstance(result, Rejected)
    assert "not enabled" in result.rejections[0].reason


def test_qbo_lookup_order_sku_then_name(mapping: LoadedMapping) -> None:
    catalog: FakeCatalog = qbo_catalog()
    planner = make_planner(mapping, catalogs={"quickbooks": catalog, "stripe": catalog})
    deal = make_deal((make_line(1, product_code="Training"),))
    result = plan_invoice(deal, planner)
    assert isinstance(result, Planned)
    assert catalog.queries[-1].candidates == (("sku", "Training"), ("name", "Training"))


# --- properties -------------------------------------------------------------------

quantities = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10000), places=2)
prices = st.decimals(min_value=Decimal(0), max_value=Decimal(100000), places=2)
discounts = st.one_of(
    st.none(), st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2)
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(quantities, prices, discounts), min_size=1, max_size=8),
    st.sampled_from(["USD", "JPY"]),
)
def test_line_totals_follow_the_formula_and_sum_to_the_total(
    mapping: LoadedMapping, specs: list[Any], currency: str
) -> None:
    lines = tuple(
        make_line(n, quantity=q, unit_price=p, discount_percent=d)
        for n, (q, p, d) in enumerate(specs, start=1)
    )
    expected = [
        money.quantize(q * p * (1 - (d or 0) / Decimal(100)), currency) for q, p, d in specs
    ]
    if sum(expected) == 0:
        return
    deal = make_deal(lines, currency=currency, target_hint="Stripe")
    result = plan_invoice(deal, make_planner(mapping))
    assert isinstance(result, Planned), result
    assert [line.amount for line in result.draft.lines] == expected
    assert result.draft.total == sum(expected)
    assert all(isinstance(line.amount, Decimal) for line in result.draft.lines)


def test_jpy_rounding_per_line_is_not_a_pricing_error(mapping: LoadedMapping) -> None:
    # Salesforce: 3 lines of 1.5 × 101 yen = 151.50 each, Amount 454.50; the invoice
    # rounds each line to 152 yen (456): rounding, not a mismatch.
    lines = tuple(
        make_line(n, quantity=Decimal("1.5"), unit_price=Decimal(101), discount_percent=None)
        for n in range(1, 4)
    )
    deal = make_deal(lines, currency="JPY", target_hint="Stripe", amount=Decimal("454.50"))
    result = plan_invoice(deal, make_planner(mapping))
    assert isinstance(result, Planned), result
    assert result.draft.total == Decimal(456)
    wrong = make_deal(lines, currency="JPY", target_hint="Stripe", amount=Decimal("460"))
    assert isinstance(plan_invoice(wrong, make_planner(mapping)), Rejected)


def test_stripe_tax_rates_and_automatic_tax_come_from_the_mapping(
    tmp_path: Any, mapping: LoadedMapping
) -> None:
    """tax.stripe: rates per product, else the defaults; automatic tax asks Stripe to
    compute it (no rates on the lines); a rate Stripe lacks is a clear rejection."""
    from billsync.mappings.loader import load_mappings

    def planned(tax_yaml: str) -> Planned | Rejected:
        user = tmp_path / "tax.yaml"
        user.write_text(f"tax:\n  stripe:\n{tax_yaml}", encoding="utf-8")
        catalog = FakeCatalog("stripe", products=mapping_products(), tax_codes={"txr_a", "txr_b"})
        catalogs = {"quickbooks": qbo_catalog(), "stripe": catalog}
        deal = make_deal((make_line(1), make_line(2, product_code="SEAT")), target_hint="stripe")
        return plan_invoice(deal, make_planner(load_mappings([user]), catalogs=catalogs))

    rated = planned("    default_rates: [txr_a]\n    by_product: {SEAT: [txr_a, txr_b]}\n")
    assert isinstance(rated, Planned), rated
    assert [line.tax_rates for line in rated.draft.lines] == [("txr_a",), ("txr_a", "txr_b")]
    assert not rated.draft.automatic_tax
    automatic = planned("    automatic: true\n")
    assert isinstance(automatic, Planned)
    assert automatic.draft.automatic_tax and automatic.draft.lines[0].tax_rates == ()
    missing = planned("    default_rates: [txr_gone]\n")
    assert isinstance(missing, Rejected)
    assert "tax rate 'txr_gone' does not exist" in str(missing)


def mapping_products() -> dict[Any, Any]:
    from tests.mappings.conftest import stripe_catalog

    return stripe_catalog().products
