"""The bad-data corpus: deals a billing coordinator would send back, and deals that are
odd but fine, each built on purpose into one Salesforce seed beside ordinary deals.

A `Case` says what must become of its deal: rejected (a needs-attention failure whose
message names the deal, a field and the fix, shown on the deal in Salesforce), or
invoiced exactly once with a given total. The seed's catalogue is the generator's,
plus a product no target knows, one QuickBooks retired, one Stripe retired, one
without a product code, and a QuickBooks Vendor whose name a customer shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billsync.sandbox.generate import GenerateOptions, generate_seed

# Salesforce itself refuses a longer Account.Name (255): a 600-character name cannot
# reach billsync from it; the mapping fuzz tests (test_fuzz.py) cover longer ones.
LONG_NAME = "Long " + "N" * 250


@dataclass(frozen=True)
class Case:
    name: str
    deal_id: str
    target: str | None  # None: must be rejected
    total: Decimal | None = None
    field: str = ""  # rejected: a fragment of the field the message names
    reason: str = ""  # rejected: a fragment of the reason
    customer_name: str | None = None  # invoiced: the name the target's customer must carry


@dataclass
class Corpus:
    seed: dict[str, Any]
    cases: list[Case] = field(default_factory=list)
    good: list[str] = field(default_factory=list)  # ordinary deals beside the cases

    def by_name(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)


def _id(prefix: str, n: int) -> str:
    return f"{prefix}R{n:011d}AAA"


class _Builder:
    def __init__(self, seed: dict[str, Any]) -> None:
        self.seed = seed
        self.sf = seed["salesforce"]
        self.products = {p["ProductCode"]: p for p in self.sf["Product2"] if p.get("ProductCode")}
        self.next = 1
        self.cases: list[Case] = []

    def account(self, name: str, *, number: str | None = None) -> str:
        account_id = _id("001", self.next)
        self.next += 1
        self.sf["Account"].append(
            {
                "Id": account_id,
                "Name": name,
                "AccountNumber": number or f"AR-{self.next:05d}",
                "BillingCity": "Austin",
                "BillingCountry": "US",
                "Billing_Email__c": f"ap{self.next}@corpus.example",
            }
        )
        return account_id

    def product(self, code: str | None, name: str) -> dict[str, Any]:
        product = {"Id": _id("01t", self.next), "Name": name, "IsActive": True}
        if code is not None:
            product["ProductCode"] = code
        self.next += 1
        self.sf["Product2"].append(product)
        if code is not None:
            self.products[code] = product
        return product

    def line(
        self, code: str, quantity: str, price: str, discount: str = "0", *, product=None
    ) -> dict[str, Any]:
        product = product or self.products[code]
        line = {
            "Id": _id("00k", self.next),
            "Product2Id": product["Id"],
            "Quantity": Decimal(quantity),
            "UnitPrice": Decimal(price),
            "Discount": Decimal(discount),
            "Description": product["Name"],
            "ServiceDate": "2026-11-02",
        }
        if product.get("ProductCode"):
            line["ProductCode"] = product["ProductCode"]
        self.next += 1
        return line

    def deal(
        self,
        case: str,
        lines: list[dict[str, Any]] | None,
        *,
        platform: str | None = "QuickBooks",
        currency: str = "USD",
        account: str | None = None,
        amount: str | None = None,
        name: str | None = None,
        **expect: Any,
    ) -> Case:
        deal_id = _id("006", self.next)
        self.next += 1
        deal: dict[str, Any] = {
            "Id": deal_id,
            "Name": name or f"Corpus — {case}",
            "StageName": "Closed Won",
            "CloseDate": "2026-11-02",
            "CurrencyIsoCode": currency,
            "Billing_Platform__c": platform,
        }
        if account is not None:
            deal["AccountId"] = account
        if lines:
            deal["OpportunityLineItems"] = lines
        if amount is not None:
            deal["Amount"] = Decimal(amount)
        self.sf["Opportunity"].append(deal)
        target = expect.pop("target", None)
        found = Case(case, deal_id, target, **expect)
        self.cases.append(found)
        return found


def build(good_deals: int, random_seed: int) -> Corpus:
    seed = generate_seed(GenerateOptions(deals=good_deals, random_seed=random_seed))
    sf = seed["salesforce"]
    # Ordinary deals stay ordinary: with products, won, routed where they can be billed.
    good = []
    for deal in sf["Opportunity"]:
        if deal["StageName"] != "Closed Won" or not deal.get("OpportunityLineItems"):
            continue
        if deal["CurrencyIsoCode"] != "USD":
            deal["Billing_Platform__c"] = "Stripe"
        elif deal.get("Billing_Platform__c") is None:
            deal["Billing_Platform__c"] = "QuickBooks"
        good.append(deal["Id"])
    b = _Builder(seed)
    _catalogue_oddities(b, seed)
    _rejected_cases(b)
    _handled_cases(b)
    return Corpus(seed, b.cases, good)


def _catalogue_oddities(b: _Builder, seed: dict[str, Any]) -> None:
    b.product("NOPE-1", "A product no target sells")
    b.product("OLD-Q", "Retired in QuickBooks")
    b.product("OLD-S", "Retired in Stripe")
    b.product(None, "A product without a code")
    seed["quickbooks"]["Item"].append(
        {"Name": "Retired widget", "Sku": "OLD-Q", "Type": "Service", "UnitPrice": Decimal(10),
         "Active": False, "IncomeAccountRef": {"value": "1", "name": "Services"}}
    )  # fmt: skip
    seed["quickbooks"].setdefault("Vendor", []).append({"DisplayName": "Twin Supplies LLC"})
    seed["stripe"]["products"].append(
        {"id": "prod_OLDS", "name": "Retired in Stripe", "active": False,
         "metadata": {"product_code": "OLD-S"}}
    )  # fmt: skip
    seed["stripe"]["prices"].append(
        {"product": "prod_OLDS", "currency": "usd", "unit_amount": 1000,
         "lookup_key": "OLD-S-USD", "active": False}
    )  # fmt: skip


def _rejected_cases(b: _Builder) -> None:
    # Salesforce itself refuses a zero quantity and a discount outside 0–100 %, so those
    # two are fed to the converter and planner in-process (test_bad_data.py).
    acct = b.account("Corpus Rejects Inc")
    plat = ("PLAT-SUB", "1", "12000.00")
    b.deal(
        "unknown product (QuickBooks)",
        [b.line("NOPE-1", "1", "10.00")],
        account=acct,
        field="ProductCode",
        reason="has no QuickBooks match",
    )
    b.deal(
        "unknown product (Stripe)",
        [b.line("NOPE-1", "1", "10.00")],
        platform="Stripe",
        account=acct,
        field="ProductCode",
        reason="has no Stripe match",
    )
    b.deal(
        "inactive product (QuickBooks)",
        [b.line("OLD-Q", "1", "10.00")],
        account=acct,
        field="ProductCode",
        reason="is inactive",
    )
    b.deal(
        "inactive product (Stripe)",
        [b.line("OLD-S", "1", "10.00")],
        platform="Stripe",
        account=acct,
        field="ProductCode",
        reason="inactive",
    )
    b.deal(
        "product without a code",
        [b.line("", "1", "10.00", product=b.sf["Product2"][-1])],
        account=acct,
        field="ProductCode",
        reason="no product code",
    )
    b.deal("missing account", [b.line(*plat)], account=None, field="Account", reason="no account")
    b.deal(
        "negative quantity",
        [b.line("SEAT", "-2", "480.00")],
        account=acct,
        field="Quantity",
        reason="not positive",
    )
    b.deal(
        "negative unit price",
        [b.line("SEAT", "1", "-480.00")],
        account=acct,
        field="UnitPrice",
        reason="negative",
    )
    b.deal(
        "zero-amount deal",
        [b.line("SEAT", "3", "0")],
        account=acct,
        field="Amount",
        reason="add up to zero",
    )
    b.deal(
        "100 % discount: nothing to bill",
        [b.line("SEAT", "2", "480.00", "100")],
        account=acct,
        field="Amount",
        reason="add up to zero",
    )
    b.deal(
        "deal with no products",
        None,
        amount="5000.00",
        account=acct,
        field="OpportunityLineItems",
        reason="has no products",
    )
    b.deal(
        "EUR to QuickBooks (home currency USD)",
        [b.line(*plat)],
        currency="EUR",
        account=acct,
        field="CurrencyIsoCode",
        reason="",
    )
    b.deal(
        "KWD to QuickBooks",
        [b.line("SEAT", "1", "150.000")],
        currency="KWD",
        account=acct,
        field="CurrencyIsoCode",
        reason="",
    )
    b.deal(
        "BTN to Stripe (unsupported)",
        [b.line("SEAT", "1", "40000.00")],
        currency="BTN",
        platform="Stripe",
        account=acct,
        field="CurrencyIsoCode",
        reason="does not support",
    )
    b.deal(
        "unknown billing platform",
        [b.line(*plat)],
        platform="Xero",
        account=acct,
        field="Billing_Platform__c",
        reason="not a known billing platform",
    )
    b.deal("a product the deal lists twice, one unknown",
           [b.line("SEAT", "1", "480.00"), b.line("NOPE-1", "1", "5.00")], account=acct,
           field="ProductCode", reason="NOPE-1")  # fmt: skip


def _handled_cases(b: _Builder) -> None:
    def invoiced(case: str, account_name: str, lines: list[Any], total: str, **kw: Any) -> None:
        b.deal(
            case,
            lines,
            account=b.account(account_name),
            target=kw.pop("target", "quickbooks"),
            total=Decimal(total),
            **kw,
        )

    def seat() -> list[dict[str, Any]]:
        return [b.line("SEAT", "2", "480.00", "10")]  # 864.00

    stripe: dict[str, Any] = {"target": "stripe", "platform": "Stripe"}
    invoiced(
        "KWD to Stripe: three decimals",
        "Gulf Traders WLL",
        [b.line("SEAT", "3", "12.340")],
        "37.020",
        currency="KWD",
        **stripe,
    )
    invoiced(
        "JPY to Stripe: no decimals",
        "Nakamura Kogyo",
        [b.line("PLAT-SUB", "3", "15100", "12.5")],
        "39638",
        currency="JPY",
        **stripe,
    )
    invoiced(
        "apostrophe (QuickBooks)",
        "O'Reilly & D'Arcy Ltd",
        seat(),
        "864.00",
        customer_name="O'Reilly & D'Arcy Ltd",
    )
    invoiced(
        "apostrophe (Stripe)",
        "L'Atelier d'Anjou",
        seat(),
        "864.00",
        customer_name="L'Atelier d'Anjou",
        **stripe,
    )
    invoiced(
        "colon in a QuickBooks name",
        "Acme: West Division",
        seat(),
        "864.00",
        customer_name="Acme- West Division",
    )
    invoiced(
        "quotes (QuickBooks)",
        'The "Best" Widgets Co',
        seat(),
        "864.00",
        customer_name='The "Best" Widgets Co',
    )
    invoiced(
        "quotes (Stripe)",
        'Say "Cheese" Studio',
        seat(),
        "864.00",
        customer_name='Say "Cheese" Studio',
        **stripe,
    )
    invoiced(
        "unicode",
        "Zürich Ünïcødé Größe AG",
        seat(),
        "864.00",
        customer_name="Zürich Ünïcødé Größe AG",
    )
    invoiced(
        "emoji (Stripe)",
        "Rocket 🚀 Labs",
        seat(),
        "864.00",
        customer_name="Rocket 🚀 Labs",
        **stripe,
    )
    invoiced(
        "emoji (QuickBooks)",
        "Party 🎉 Supplies",
        seat(),
        "864.00",
        customer_name="Party 🎉 Supplies",
    )
    invoiced("255-character name (QuickBooks)", LONG_NAME, seat(), "864.00")
    invoiced("255-character name (Stripe)", LONG_NAME[:-2] + " S", seat(), "864.00", **stripe)
    invoiced("DisplayName equal to a Vendor's", "Twin Supplies LLC", seat(), "864.00")
    invoiced(
        "120-character deal name with emoji",
        "Memo Makers",
        seat(),
        "864.00",
        name="🚀 " + "D" * 118,
    )
    # Deals the money cases of the second and third runs act on.
    for case in ("stripe customer deleted", "stripe invoice voided", "refund over payment"):
        invoiced(case, f"Corpus {case.title()}", seat(), "864.00", **stripe)
    for case in ("quickbooks payment voided", "quickbooks overpayment"):
        invoiced(case, f"Corpus {case.title()}", seat(), "864.00")
