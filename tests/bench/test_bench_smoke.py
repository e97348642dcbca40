"""The benchmark harness itself: the reference pipeline's invoices and the arithmetic.

The benchmark's figures are only as good as (1) the reference pipeline being correct
and per-record, (2) the checker catching wrong results and (3) the counting, ratio and
ceiling code. The reference runs here against a real sandbox on five deals.
"""

from __future__ import annotations

import copy
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from bench import ceilings
from bench.dataset import DatasetOptions, bench_seed, expected_invoices, line_amount
from bench.harness import Table, per, ratio, verdict
from bench.runner import run_measured
from bench.scenarios.overhead import qbo_budget_floor_s
from bench.verify import invoices_per_deal, verify
from bench.world import world


@pytest.fixture(scope="module")
def reference_world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("bench")
    with world(root, "reference", DatasetOptions(deals=5, random_seed=3)) as w:
        result = w.run_reference()
        yield w, result, w.calls(), w.handle.state()


def test_reference_invoices_every_deal_once_with_the_right_total(reference_world: Any) -> None:
    w, result, _, state = reference_world
    assert result.exit_code == 0, result.stderr_tail
    assert (result.summary["invoices_created"], result.summary["failures"]) == (5, 0)
    checked = verify(state, w.expected)
    assert checked.ok, checked.describe()
    assert checked.invoiced_once == 5
    assert {e.target for e in w.expected.values()} == {"quickbooks", "stripe"}


def test_reference_works_per_record(reference_world: Any) -> None:
    w, _, calls, state = reference_world
    deals = len(w.expected)
    stripe_deals = sum(1 for e in w.expected.values() if e.target == "stripe")
    sf = calls["systems"]["salesforce"]
    assert sf["GET query"] == 1 + deals  # the won deals, then one query per deal for lines
    assert sf["PATCH sobjects/Opportunity/{id}"] == deals  # one update per deal
    st = calls["systems"]["stripe"]
    assert st["GET /v1/customers"] == stripe_deals  # a customer lookup per deal
    assert st["POST /v1/invoices"] == stripe_deals
    invoices = state["quickbooks"].get("Invoice", [])
    assert calls["systems"]["quickbooks"]["POST invoice"] == len(invoices) == deals - stripe_deals


def test_reference_run_again_creates_nothing(reference_world: Any) -> None:
    w, _, _, _ = reference_world
    again = w.run_reference()
    assert again.exit_code == 0 and again.summary["invoices_created"] == 0
    assert verify(w.handle.state(), w.expected).ok


def test_checker_catches_a_duplicate_a_wrong_total_and_a_missing_invoice(
    reference_world: Any,
) -> None:
    w, _, _, state = reference_world
    broken = copy.deepcopy(state)
    qbo = broken["quickbooks"]["Invoice"]
    qbo.append(dict(qbo[0], Id="9999"))  # a second invoice for the same deal
    stripe_invoices = [i for i in broken["stripe"]["invoices"] if i["status"] != "draft"]
    stripe_invoices[0]["total"] += 1  # one minor unit off
    stripe_invoices[1]["status"] = "void"  # voided: the deal has no live invoice
    found = verify(broken, w.expected)
    assert not found.ok
    assert found.duplicated == [qbo[0]["DocNumber"]]
    assert len(found.wrong) == 1 and len(found.missing) == 1
    assert invoices_per_deal(broken)[2] == 1


def test_dataset_shape() -> None:
    seed = bench_seed(DatasetOptions(deals=300, random_seed=5, quickbooks_share=Fraction(1, 3)))
    deals = seed["salesforce"]["Opportunity"]
    per_account = Counter(d["AccountId"] for d in deals)
    assert len(per_account) == 100 and set(per_account.values()) == {3}
    expected = expected_invoices(seed)
    targets = Counter(e.target for e in expected.values())
    assert targets == {"quickbooks": 99, "stripe": 201}
    assert all(e.currency == "USD" for e in expected.values() if e.target == "quickbooks")
    assert {len(d["OpportunityLineItems"]) for d in deals} == set(range(1, 9))


def test_line_amount_rounds_half_up_to_the_minor_unit() -> None:
    line = {"Quantity": Decimal(3), "UnitPrice": Decimal("175.00"), "Discount": Decimal("12.5")}
    assert line_amount(line, "USD") == Decimal("459.38")  # 459.375
    assert line_amount({**line, "UnitPrice": Decimal(26425)}, "JPY") == Decimal(69366)


def test_counting_and_ratios() -> None:
    assert per(6, 300) == 0.02 and per(5, 0) == 0.0
    assert ratio(604, 6) == "100.7×" and ratio(1, 0) == "n/a"
    assert verdict(0.0099, 0.01) == "met" and verdict(0.0101, 0.01) == "**MISSED**"
    assert verdict(12, 10, at_most=False) == "met" and verdict(2.2, 10, at_most=False) != "met"
    table = Table(["a", "b"], title="t")
    table.add(1234, 0.5)
    assert table.markdown().splitlines()[-1] == "| 1,234 | 0.5 |"


def test_ceilings() -> None:
    # 3 Stripe invoices for 1 new customer: 13 calls at 25/s.
    assert ceilings.stripe_per_min(3, 1) == pytest.approx(25 * 60 * 3 / 13)
    # QuickBooks: 1,200/min by batches unless single customer creates exhaust 500/min.
    assert ceilings.quickbooks_per_min(300, 100) == pytest.approx(1200)
    assert ceilings.quickbooks_per_min(300, 300) == pytest.approx(500 / (1 / 30 + 1))
    assert ceilings.mixed_per_min(1200, 346, 0.5) == pytest.approx(692)
    assert ceilings.mixed_per_min(1200, 346, 1.0) == 1200
    assert ceilings.window_ceiling(59.9) == 1200 and ceilings.window_ceiling(121) == 3600
    assert qbo_budget_floor_s(40) == 0 and qbo_budget_floor_s(41) == 60
    assert qbo_budget_floor_s(223) == 300


def test_measured_child_reports_cpu_and_peak_rss(tmp_path: Path) -> None:
    result = run_measured("json.tool", ["--help"], tmp_path)
    assert result.exit_code == 0
    assert result.cpu_s > 0 and result.peak_rss_bytes > 5 * 1024 * 1024
