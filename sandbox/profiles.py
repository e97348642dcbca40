"""Which companies the sandbox stands in for: one of each vendor, or several.

`single` (the default) is one QuickBooks company and one Stripe account, written into
the billsync config as the plain `quickbooks:` and `stripe:` sections, as always.
`multi` is what a business with several legal entities runs: a US and a UK QuickBooks
company (USD and GBP home currency) connected through one Intuit app, and a US and an
EU Stripe account, written as billsync `connections:` named after each company.

A company's `connection` is the name billsync knows it by: the config key, and the
webhook route (`<billsync>/webhooks/<connection>`). The realm ids are fixed so a
generated seed and the written config agree without talking to each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Company:
    connection: str
    label: str
    """The Salesforce `Billing_Platform__c` value that routes a deal to this company."""
    home_currency: str = "USD"
    realm_id: str | None = None
    """QuickBooks only; None keeps the sandbox's default realm id."""
    company_name: str = ""
    currencies: tuple[str, ...] = ()
    """What the generator bills through this company (the first is the most common)."""


@dataclass(frozen=True)
class Profile:
    name: str
    quickbooks: tuple[Company, ...]
    stripe: tuple[Company, ...]

    @property
    def companies(self) -> tuple[Company, ...]:
        return (*self.quickbooks, *self.stripe)

    @property
    def multi(self) -> bool:
        return any(c.connection not in ("quickbooks", "stripe") for c in self.companies)


SINGLE = Profile(
    "single",
    quickbooks=(Company("quickbooks", "QuickBooks"),),
    stripe=(Company("stripe", "Stripe"),),
)
MULTI = Profile(
    "multi",
    quickbooks=(
        Company(
            "qbo_us",
            "QuickBooks US",
            "USD",
            realm_id="9341453050298475",
            company_name="Sandbox Company_US_1",
            currencies=("USD", "CAD"),
        ),
        Company(
            "qbo_uk",
            "QuickBooks UK",
            "GBP",
            realm_id="9341453050298476",
            company_name="Sandbox Company_GB_1",
            currencies=("GBP",),
        ),
    ),
    stripe=(
        Company("stripe_us", "Stripe US", "USD", currencies=("USD", "JPY", "CAD")),
        Company("stripe_eu", "Stripe EU", "EUR", currencies=("EUR",)),
    ),
)
PROFILES = {profile.name: profile for profile in (SINGLE, MULTI)}


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {name!r}") from None
