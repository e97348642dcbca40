"""The seed generator: reproducible, realistic, exact money."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed


def test_same_seed_same_file_other_seed_other_file() -> None:
    first = jsonutil.dumps(generate_seed(GenerateOptions(deals=50, random_seed=7)))
    again = jsonutil.dumps(generate_seed(GenerateOptions(deals=50, random_seed=7)))
    other = jsonutil.dumps(generate_seed(GenerateOptions(deals=50, random_seed=8)))
    assert first == again
    assert first != other


def test_realistic_mix() -> None:
    seed = generate_seed(GenerateOptions(deals=600, random_seed=3))
    deals = seed["salesforce"]["Opportunity"]
    accounts = seed["salesforce"]["Account"]
    assert len(deals) == 600
    assert len(accounts) < len(deals)  # repeat customers
    assert Counter(d["AccountId"] for d in deals).most_common(1)[0][1] > 1
    currencies = {d["CurrencyIsoCode"] for d in deals}
    assert {"USD", "JPY", "EUR"} <= currencies
    assert {d["Billing_Platform__c"] for d in deals} == {"QuickBooks", "Stripe", None}
    with_lines = [d for d in deals if "OpportunityLineItems" in d]
    assert 0 < len(deals) - len(with_lines) < len(deals) * 0.1  # a few with no products
    counts = {len(d["OpportunityLineItems"]) for d in with_lines}
    assert min(counts) == 1 and max(counts) == 8
    discounts = {line["Discount"] for d in with_lines for line in d["OpportunityLineItems"]}
    assert Decimal("0") in discounts and len(discounts) > 3
    assert any(d["StageName"] != "Closed Won" for d in deals)
    assert any("'" in a["Name"] for a in accounts)


def test_money_is_decimal_and_at_currency_precision() -> None:
    seed = generate_seed(GenerateOptions(deals=300, random_seed=5))
    for deal in seed["salesforce"]["Opportunity"]:
        for line in deal.get("OpportunityLineItems", []):
            assert isinstance(line["UnitPrice"], Decimal)
            if deal["CurrencyIsoCode"] == "JPY":
                assert line["UnitPrice"] == line["UnitPrice"].to_integral_value()
    for price in seed["stripe"]["prices"]:
        assert isinstance(price["unit_amount"], int)


def test_json_numbers_round_trip_exactly() -> None:
    seed = generate_seed(GenerateOptions(deals=20, random_seed=1))
    text = jsonutil.dumps(seed)
    assert '"UnitPrice": "' not in text  # numbers, as Salesforce writes them
    assert jsonutil.loads(text) == seed


def test_cli_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "seed.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "billsync.sync.cli",
            "sandbox",
            "generate",
            "--deals",
            "25",
            "--random-seed",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "25 deals" in result.stdout
    assert len(jsonutil.loads(out.read_text())["salesforce"]["Opportunity"]) == 25
