"""What the sandbox holds, read per company, for suites that run the `multi` profile
(two QuickBooks companies, two Stripe accounts) as well as the single one.

A deal's expected outcome follows the profile's routing: the company whose label is in
`Billing_Platform__c` (any case), or `sync.default_target` when the field is empty; the
generator gives every multi-profile deal a currency its company bills, so only a deal
without products is rejected.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billsync.core import money
from billsync.sandbox.profiles import MULTI, SINGLE, Profile
from tests.e2e import test_run_e2e

Invoice = tuple[str, str, Decimal]
"""(connection, invoice id, total)"""

DEFAULT_TARGET = {MULTI.name: "qbo_us"}


def expected_outcome(deal: dict[str, Any], profile: Profile) -> tuple[str | None, Decimal | None]:
    """(connection, total) billsync must produce, or (None, None) for a rejected deal."""
    if profile is SINGLE:
        return test_run_e2e.expected_outcome(deal)
    platform = (deal.get("Billing_Platform__c") or "").casefold()
    routes = {company.label.casefold(): company.connection for company in profile.companies}
    target = routes.get(platform) if platform else DEFAULT_TARGET[profile.name]
    lines = deal.get("OpportunityLineItems") or []
    if target is None or not lines:
        return None, None
    currency = deal["CurrencyIsoCode"]
    total = sum((test_run_e2e.line_amount(line, currency) for line in lines), Decimal(0))
    return target, total


def invoices_by_deal(state: dict[str, Any], profile: Profile) -> dict[str, list[Invoice]]:
    """Every live invoice billsync made, by deal, in whichever company holds it."""
    if profile is SINGLE:
        return test_run_e2e.invoices_by_deal(state)
    realms = {company.realm_id: company.connection for company in profile.quickbooks}
    found: dict[str, list[Invoice]] = {}
    for realm_id, realm in state["quickbooks"]["realms"].items():
        for invoice in realm.get("Invoice", []):
            deal_id = (invoice.get("PrivateNote") or "").rsplit(" ", 1)[-1]
            entry = (realms[realm_id], invoice["Id"], Decimal(str(invoice["TotalAmt"])))
            found.setdefault(deal_id, []).append(entry)
    for account, books in stripe_accounts(state, profile).items():
        for invoice in books.get("invoices", []):
            deal_id = (invoice.get("metadata") or {}).get("billsync_deal_id")
            if deal_id and invoice["status"] != "draft":
                total = money.from_minor_units(invoice["total"], invoice["currency"].upper())
                found.setdefault(deal_id, []).append((account, invoice["id"], total))
    return found


def stripe_accounts(state: dict[str, Any], profile: Profile) -> dict[str, dict[str, Any]]:
    """Each Stripe account's objects by connection name."""
    if profile is SINGLE:
        return {"stripe": state["stripe"]}
    accounts: dict[str, dict[str, Any]] = state["stripe"]["accounts"]
    return accounts
