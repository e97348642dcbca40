"""`billsync sandbox generate`: a realistic, reproducible seed file.

What a real org looks like to billsync: customers that buy again and again, a product
catalogue shared by all three systems (QuickBooks Items by Sku, Stripe prices by
lookup key), several currencies (JPY among them), 1–8 lines per deal with discounts,
deals routed to QuickBooks or Stripe or left to the default, a few open deals that
must not be pulled, and a few won deals with no products. The same `--random-seed`
always gives the same file.

For the `multi` profile each deal is routed (`Billing_Platform__c`) to a company that
bills its currency (GBP deals to the UK QuickBooks company, EUR deals to the EU Stripe
account, …) and the catalogue is seeded into every company, priced in its home currency.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from iso4217 import Currency

from billsync.sandbox.profiles import SINGLE, Company, Profile
from billsync.sandbox.stripe import money as stripe_money

COMPANIES = (
    "Acme Analytics",
    "O'Brien & Sons",
    "Zürich Logistik",
    "Blue Harbor Foods",
    "Nakamura Seisakusho",
    "Café Lumière",
    "Northwind Traders",
    "Contoso Health",
    "Fabrikam Robotics",
    "Tailspin Toys",
    "Wide World Importers",
    "Litware Labs",
    "Adventure Works",
    "Proseware Inc",
    "Woodgrove Bank",
    "Coho Winery",
    "Lucerne Publishing",
    "Margie's Travel",
    "Alpine Ski House",
    "Humongous Insurance",
)
CITIES = (
    ("USD", "US", "Austin", "78701"),
    ("USD", "US", "Chicago", "60601"),
    ("USD", "US", "Boston", "02110"),
    ("USD", "US", "Denver", "80202"),
    ("USD", "US", "Seattle", "98101"),
    ("EUR", "DE", "Berlin", "10115"),
    ("EUR", "FR", "Lyon", "69001"),
    ("GBP", "GB", "Leeds", "LS1 4AP"),
    ("JPY", "JP", "Osaka", "530-0001"),
    ("CAD", "CA", "Toronto", "M5H 2N2"),
)
# (code, name, USD list price); prices in other currencies derive from it.
CATALOGUE = (
    ("PLAT-SUB", "Platform subscription (annual)", "12000.00"),
    ("SEAT", "Additional seat (annual)", "480.00"),
    ("ONBOARD", "Onboarding package", "2500.00"),
    ("TRAIN-HR", "Training (per hour)", "175.00"),
    ("SUPPORT-PREM", "Premium support (annual)", "3600.00"),
    ("API-PACK", "API call pack (1M)", "99.90"),
    ("STORAGE-TB", "Storage (per TB-month)", "23.50"),
    ("CONSULT-DAY", "Consulting day", "1450.00"),
    ("HW-GATEWAY", "Gateway appliance", "899.99"),
    ("LIC-ADDON", "Analytics add-on licence", "2990.00"),
)
RATES = {"USD": "1", "EUR": "0.92", "GBP": "0.79", "JPY": "151", "CAD": "1.37", "KWD": "0.307"}
STAGES_OPEN = ("Prospecting", "Negotiation/Review", "Closed Lost")
DISCOUNTS = ("0", "0", "0", "5", "10", "12.5", "15", "20")


@dataclass(frozen=True)
class GenerateOptions:
    deals: int
    random_seed: int = 1
    start: date = date(2026, 10, 1)
    profile: Profile = SINGLE


def generate_seed(options: GenerateOptions) -> dict[str, Any]:
    rng = random.Random(options.random_seed)
    accounts = _accounts(rng, max(3, options.deals // 3))
    products = [
        {"Id": _sf_id("01t", i), "Name": name, "ProductCode": code, "IsActive": True}
        for i, (code, name, _) in enumerate(CATALOGUE)
    ]
    route = _single_route if not options.profile.multi else _company_route(options.profile)
    opportunities = [
        _opportunity(rng, i, rng.choice(accounts), options.start, route)
        for i in range(options.deals)
    ]
    seed: dict[str, Any] = {
        "salesforce": {
            "Account": accounts,
            "Product2": products,
            "Opportunity": opportunities,
        },
        "quickbooks": _quickbooks_catalogue("USD"),
        "stripe": _stripe_catalogue(),
    }
    if options.profile.multi:
        profile = options.profile
        seed["quickbooks"] = {
            "realms": {
                c.connection: _quickbooks_catalogue(c.home_currency) for c in profile.quickbooks
            }
        }
        seed["stripe"] = {"accounts": {c.connection: _stripe_catalogue() for c in profile.stripe}}
    return seed


Route = Callable[[str, float], str | None]
"""(deal currency, a uniform roll in [0, 1)) -> the deal's Billing_Platform__c."""


def _single_route(currency: str, roll: float) -> str | None:
    if currency == "USD":
        return "QuickBooks" if roll < 0.55 else "Stripe" if roll < 0.95 else None
    return "Stripe" if roll < 0.9 else "QuickBooks"


def _company_route(profile: Profile) -> Route:
    billing: dict[str, list[Company]] = {}
    for company in profile.companies:
        for currency in company.currencies:
            billing.setdefault(currency, []).append(company)

    def route(currency: str, roll: float) -> str | None:
        # A few USD deals leave the field empty: they go to config sync.default_target.
        if currency == "USD" and roll >= 0.95:
            return None
        candidates = billing.get(currency) or [profile.companies[0]]
        return candidates[int(roll * len(candidates))].label

    return route


def _sf_id(prefix: str, n: int) -> str:
    # 18-character ids with the object's key prefix, like Salesforce's.
    return f"{prefix}{n:012d}AAA"[:18].ljust(18, "A")


def _accounts(rng: random.Random, count: int) -> list[dict[str, Any]]:
    accounts = []
    for i in range(count):
        base = COMPANIES[i % len(COMPANIES)]
        name = base if i < len(COMPANIES) else f"{base} {i // len(COMPANIES) + 1}"
        currency, country, city, postcode = rng.choice(CITIES)
        slug = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())[:20]
        accounts.append(
            {
                "Id": _sf_id("001", i),
                "Name": name,
                "AccountNumber": f"AC-{i + 1:05d}",
                "BillingStreet": f"{rng.randint(1, 999)} Market Street",
                "BillingCity": city,
                "BillingPostalCode": postcode,
                "BillingCountry": country,
                "Billing_Email__c": f"ap@{slug or 'customer'}.example",
                "CurrencyIsoCode": currency,
            }
        )
    return accounts


def _price(code_usd: str, currency: str) -> Decimal:
    amount = Decimal(code_usd) * Decimal(RATES[currency])
    unit = _iso_minor_unit(currency)
    # Stripe charges three-decimal currencies in steps of 10 minor units (a KWD amount
    # must end in 0), so list prices in them stop at hundredths.
    step = Decimal("0.01") if currency.lower() in stripe_money.THREE_DECIMAL else unit
    return amount.quantize(step, rounding=ROUND_HALF_UP).quantize(unit)


def _iso_minor_unit(currency: str) -> Decimal:
    """The currency's smallest amount in ISO 4217 (the `iso4217` package ships the
    maintenance agency's table): 0.01 USD, 1 JPY, 0.001 KWD. Salesforce prices follow it."""
    places = Currency(currency).exponent
    if places is None:  # gold, SDRs, test codes: nothing to price a catalogue in
        raise ValueError(f"{currency} has no minor unit in ISO 4217")
    return Decimal(1).scaleb(-places)


def _opportunity(
    rng: random.Random, i: int, account: dict[str, Any], start: date, route: Route
) -> dict[str, Any]:
    currency = account["CurrencyIsoCode"]
    platform = route(currency, rng.random())
    stage = "Closed Won" if rng.random() < 0.93 else rng.choice(STAGES_OPEN)
    close = start + timedelta(days=rng.randint(0, 45))
    deal: dict[str, Any] = {
        "Id": _sf_id("006", i),
        "Name": f"{account['Name']} — order {i + 1}",
        "AccountId": account["Id"],
        "StageName": stage,
        "CloseDate": close.isoformat(),
        "CurrencyIsoCode": currency,
        "Billing_Platform__c": platform,
    }
    if rng.random() < 0.03:
        # A won deal with no products: only an amount (billsync must flag or handle it).
        deal["Amount"] = _price("5000.00", currency)
        return deal
    lines = []
    for n, (code, name, usd) in enumerate(rng.sample(CATALOGUE, rng.randint(1, 8))):
        quantity = Decimal(rng.choice((1, 1, 1, 2, 3, 5, 10, 25)))
        if code == "TRAIN-HR":
            quantity = Decimal(rng.choice(("1.5", "4", "7.5", "16")))
        lines.append(
            {
                "Id": _sf_id("00k", i * 10 + n),
                "Product2Id": _sf_id("01t", [c[0] for c in CATALOGUE].index(code)),
                "ProductCode": code,
                "Name": name,
                "Quantity": quantity,
                "UnitPrice": _price(usd, currency),
                "Discount": Decimal(rng.choice(DISCOUNTS)),
                "Description": name,
                "ServiceDate": close.isoformat(),
            }
        )
    deal["OpportunityLineItems"] = lines
    return deal


def _quickbooks_catalogue(home_currency: str) -> dict[str, Any]:
    # An Item's UnitPrice is in the company's home currency.
    return {
        "Item": [
            {
                "Name": name,
                "Sku": code,
                "Type": "Service",
                "UnitPrice": _price(usd, home_currency),
                "Active": True,
                "IncomeAccountRef": {"value": "1", "name": "Services"},
            }
            for code, name, usd in CATALOGUE
        ],
        "Term": [
            {"Name": "Net 15", "DueDays": 15, "Active": True},
            {"Name": "Net 30", "DueDays": 30, "Active": True},
            {"Name": "Due on receipt", "DueDays": 0, "Active": True},
        ],
    }


def _stripe_catalogue() -> dict[str, Any]:
    products = [
        {"id": f"prod_{code.replace('-', '')}", "name": name, "metadata": {"product_code": code}}
        for code, name, _ in CATALOGUE
    ]
    prices = [
        {
            "product": f"prod_{code.replace('-', '')}",
            "currency": currency.lower(),
            "unit_amount": stripe_money.to_minor_units(_price(usd, currency), currency.lower()),
            "lookup_key": f"{code}-{currency}",
        }
        for code, _, usd in CATALOGUE
        for currency in RATES
    ]
    return {"products": products, "prices": prices}
