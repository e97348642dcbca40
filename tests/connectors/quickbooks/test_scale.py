"""Acceptance: 300 deals to QuickBooks through the real planner and catalog, counted by
the sandbox's call counter (GET /_sandbox/calls)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal

from billsync.core.canonical import Account, Address, Deal, DealLine, InvoiceRef
from billsync.core.idempotency import invoice_key
from billsync.mappings.loader import load_mappings
from billsync.mappings.plan import Planned, Planner, plan_invoice
from billsync.sandbox.generate import CATALOGUE, GenerateOptions, generate_seed
from tests.connectors.quickbooks.conftest import Qbo

REVISION = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
USD = {code: Decimal(price) for code, _, price in CATALOGUE}


def won_deals(count: int) -> list[Deal]:
    """Deals from a generated seed, billed in USD at the catalogue's list prices."""
    seed = generate_seed(GenerateOptions(deals=count * 2, random_seed=7))["salesforce"]
    accounts = {a["Id"]: a for a in seed["Account"]}
    deals = []
    for opp in seed["Opportunity"]:
        items = opp.get("OpportunityLineItems")
        if opp["StageName"] != "Closed Won" or not items:
            continue
        acct = accounts[opp["AccountId"]]
        lines = tuple(
            DealLine(
                id=item["Id"],
                product_code=item["ProductCode"],
                description=item["Description"],
                quantity=item["Quantity"],
                unit_price=USD[item["ProductCode"]],
                discount_percent=item["Discount"],
                service_date=date.fromisoformat(item["ServiceDate"]),
            )
            for item in items
        )
        deals.append(
            Deal(
                id=opp["Id"],
                account=Account(
                    id=acct["Id"],
                    name=acct["Name"],
                    number=acct["AccountNumber"],
                    billing_email=acct["Billing_Email__c"],
                    billing_address=Address(
                        line1=acct["BillingStreet"],
                        city=acct["BillingCity"],
                        postal_code=acct["BillingPostalCode"],
                        country=acct["BillingCountry"],
                    ),
                ),
                name=opp["Name"],
                close_date=date.fromisoformat(opp["CloseDate"]),
                currency="USD",
                amount=sum((line.amount("USD") for line in lines), Decimal(0)),
                lines=lines,
                revision=REVISION,
                target_hint="QuickBooks",
            )
        )
        if len(deals) == count:
            return deals
    raise AssertionError("the seed had too few won deals")


def test_three_hundred_deals_cost_ten_invoice_batches(qbo: Qbo) -> None:
    qbo.seed(**generate_seed(GenerateOptions(deals=1))["quickbooks"])
    deals = won_deals(300)
    qbo.reset_calls()
    connector = qbo.connector()
    planner = Planner(
        mapping=load_mappings(),
        catalogs={"quickbooks": connector.catalog()},
        default_target=None,
        idempotency_key=invoice_key,
        today=date(2026, 11, 2),
    )
    plans = [plan_invoice(deal, planner) for deal in deals]
    drafts = [p.draft for p in plans if isinstance(p, Planned)]
    assert len(drafts) == 300, [p for p in plans if not isinstance(p, Planned)][:3]
    results = connector.create_invoices(drafts)
    refs = [r for r in results.values() if isinstance(r, InvoiceRef)]
    assert len(refs) == 300, [r for r in results.values() if not isinstance(r, InvoiceRef)][:3]
    by_deal = {d.deal_id: d for d in drafts}
    assert all(r.total == by_deal[r.deal_id or ""].total for r in refs)
    assert connector.take_discrepancies() == []
    assert len(qbo.invoices()) == 300

    calls = qbo.calls()
    customers = len({d.customer.account_id for d in drafts})
    created = sum(1 for how in connector.customers.outcomes.values() if how == "created")
    customer_batches = math.ceil(created / 30)
    invoice_batches = calls["POST batch"] - customer_batches
    print(f"\n300 deals, {customers} customers ({created} created): calls {calls}")
    print(
        f"invoice-create calls (batches): {invoice_batches}; customer batches: {customer_batches}"
    )
    assert invoice_batches <= 15 and invoice_batches == 10
    assert "POST invoice" not in calls and "POST customer" not in calls
    # look-ups: items, terms (catalog), names + emails (customers), DocNumber per batch
    lookups = calls["POST query"]
    assert lookups <= 1 + 1 + 2 * math.ceil(customers / 50) + 10
