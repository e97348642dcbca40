"""The benchmark's deals: every one billable, a known share to each target.

`billsync sandbox generate` is tuned for realism (open deals, deals with no products,
currencies QuickBooks cannot bill, a few routed nowhere), which is right for the demo
and the end-to-end tests but blurs a benchmark: calls per *invoiced* deal need every
deal invoiced. This builds on the generator's catalogue (the same products, Items,
Prices and list prices in the three systems) and writes its own accounts and deals:

- one account per three deals, each account with exactly three deals spread through
  the run (so exactly one new customer per three deals, and repeat customers that hit
  the ledger's link or the target's lookup);
- accounts alternate between the targets by ``quickbooks_share``; QuickBooks accounts
  bill in USD (its home currency), Stripe accounts in USD, EUR, GBP, JPY or CAD;
- 1-8 lines per deal with the generator's quantities and discounts, all Closed Won.

`expected_invoices` is the truth a run is checked against: per deal, the target and
the total to the minor unit (each line rounded half up, as billsync and any correct
integration must).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from billsync.core import money
from billsync.sandbox.generate import (
    CATALOGUE,
    CITIES,
    COMPANIES,
    DISCOUNTS,
    RATES,
    GenerateOptions,
)
from billsync.sandbox.generate import generate_seed as generate_catalogue

DEALS_PER_ACCOUNT = 3
STRIPE_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD")
PLATFORM = {"quickbooks": "QuickBooks", "stripe": "Stripe"}


@dataclass(frozen=True)
class DatasetOptions:
    deals: int
    random_seed: int = 1
    quickbooks_share: Fraction = Fraction(1, 2)
    """Share of accounts (and so of deals) billed in QuickBooks; the rest go to Stripe."""
    start: date = date(2026, 10, 1)


@dataclass(frozen=True)
class Expected:
    target: str
    total: Decimal
    currency: str
    account_id: str
    account_name: str


def bench_seed(options: DatasetOptions) -> dict[str, Any]:
    """A seed file (the format of `billsync sandbox serve --seed`)."""
    if options.deals < 1:
        raise ValueError("a dataset needs at least one deal")
    rng = random.Random(options.random_seed)
    catalogue = generate_catalogue(GenerateOptions(deals=1, random_seed=options.random_seed))
    products = catalogue["salesforce"]["Product2"]
    product_ids = {p["ProductCode"]: p["Id"] for p in products}
    account_count = -(-options.deals // DEALS_PER_ACCOUNT)
    targets = [_target_of(i, options.quickbooks_share) for i in range(account_count)]
    accounts = [_account(rng, i, target) for i, target in enumerate(targets)]
    owners = [i for i in range(account_count) for _ in range(DEALS_PER_ACCOUNT)][: options.deals]
    rng.shuffle(owners)
    deals = [
        _deal(rng, n, accounts[owner], PLATFORM[targets[owner]], product_ids, options.start)
        for n, owner in enumerate(owners)
    ]
    return {
        "salesforce": {"Account": accounts, "Product2": products, "Opportunity": deals},
        "quickbooks": catalogue["quickbooks"],
        "stripe": catalogue["stripe"],
    }


def expected_invoices(seed: dict[str, Any]) -> dict[str, Expected]:
    """Deal id -> the one invoice a correct run must leave in the target."""
    accounts = {a["Id"]: a for a in seed["salesforce"]["Account"]}
    expected = {}
    for deal in seed["salesforce"]["Opportunity"]:
        currency = deal["CurrencyIsoCode"]
        account = accounts[deal["AccountId"]]
        total = sum(
            (line_amount(line, currency) for line in deal["OpportunityLineItems"]), Decimal(0)
        )
        target = "quickbooks" if deal["Billing_Platform__c"] == "QuickBooks" else "stripe"
        expected[deal["Id"]] = Expected(target, total, currency, account["Id"], account["Name"])
    return expected


def line_amount(line: dict[str, Any], currency: str) -> Decimal:
    """Quantity x unit price less the discount percent, rounded half up to the minor unit."""
    discount = Decimal(line.get("Discount") or 0)
    exact = Decimal(line["Quantity"]) * Decimal(line["UnitPrice"]) * (100 - discount) / 100
    return exact.quantize(money.minor_unit(currency), rounding=ROUND_HALF_UP)


def _target_of(account_index: int, share: Fraction) -> str:
    # Spread evenly: account i is QuickBooks when the running share crosses an integer.
    crossed = int((account_index + 1) * share) > int(account_index * share)
    return "quickbooks" if crossed else "stripe"


def _sf_id(prefix: str, n: int) -> str:
    return f"{prefix}{n:012d}AAA"[:18].ljust(18, "A")


def _account(rng: random.Random, i: int, target: str) -> dict[str, Any]:
    currency = "USD" if target == "quickbooks" else rng.choice(STRIPE_CURRENCIES)
    city = rng.choice([c for c in CITIES if c[0] == currency])
    name = f"{COMPANIES[i % len(COMPANIES)]} {i // len(COMPANIES) + 1}"
    slug = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())[:20]
    return {
        "Id": _sf_id("001", i),
        "Name": name,
        "AccountNumber": f"AC-{i + 1:06d}",
        "BillingStreet": f"{rng.randint(1, 999)} Market Street",
        "BillingCity": city[2],
        "BillingPostalCode": city[3],
        "BillingCountry": city[1],
        # Unique per account: billsync matches customers by name, then by email.
        "Billing_Email__c": f"ap-{i + 1:06d}@{slug or 'customer'}.example",
        "CurrencyIsoCode": currency,
    }


def _price(usd: str, currency: str) -> Decimal:
    amount = Decimal(usd) * Decimal(RATES[currency])
    return amount.quantize(money.minor_unit(currency), rounding=ROUND_HALF_UP)


def _deal(
    rng: random.Random,
    n: int,
    account: dict[str, Any],
    platform: str,
    product_ids: dict[str, str],
    start: date,
) -> dict[str, Any]:
    currency = account["CurrencyIsoCode"]
    close = start + timedelta(days=rng.randint(0, 45))
    lines = []
    for k, (code, name, usd) in enumerate(rng.sample(CATALOGUE, rng.randint(1, 8))):
        quantity = Decimal(rng.choice((1, 1, 1, 2, 3, 5, 10, 25)))
        if code == "TRAIN-HR":
            quantity = Decimal(rng.choice(("1.5", "4", "7.5", "16")))
        lines.append(
            {
                "Id": _sf_id("00k", n * 10 + k),
                "Product2Id": product_ids[code],
                "ProductCode": code,
                "Name": name,
                "Quantity": quantity,
                "UnitPrice": _price(usd, currency),
                "Discount": Decimal(rng.choice(DISCOUNTS)),
                "Description": name,
                "ServiceDate": close.isoformat(),
            }
        )
    return {
        "Id": _sf_id("006", n),
        "Name": f"{account['Name']} — order {n + 1}",
        "AccountId": account["Id"],
        "StageName": "Closed Won",
        "CloseDate": close.isoformat(),
        "CurrencyIsoCode": currency,
        "Billing_Platform__c": platform,
        "OpportunityLineItems": lines,
    }
