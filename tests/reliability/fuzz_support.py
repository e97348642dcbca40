"""Inputs for the mapping-layer fuzzing and the corpus's in-process cases: a raw
Salesforce record as the pull reads it, and the path it takes — the Salesforce
converter (`to_deal`, which may raise only `RecordProblem`), then the planner
(`plan_invoice`, which never raises: it returns a draft or the rejections)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billsync.connectors.salesforce.convert import RecordProblem, to_deal
from billsync.connectors.salesforce.fields import DealFieldPaths
from billsync.core.idempotency import invoice_key
from billsync.mappings.loader import load_mappings
from billsync.mappings.plan import Planned, Planner, Rejected, plan_invoice
from tests.mappings.conftest import qbo_catalog, stripe_catalog

Outcome = RecordProblem | Planned | Rejected


def planner(default_target: str | None = "quickbooks") -> Planner:
    return Planner(
        mapping=load_mappings(),
        catalogs={"quickbooks": qbo_catalog(), "stripe": stripe_catalog()},
        default_target=default_target,
        idempotency_key=invoice_key,
    )


def sf_line(**changes: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "Id": "00kR0000000001AAAA",
        "ProductCode": "PLAT-SUB",
        "Name": "Platform subscription",
        "Description": "Platform subscription",
        "Quantity": Decimal(2),
        "UnitPrice": Decimal("100.00"),
        "Discount": Decimal(10),
        "ServiceDate": "2026-11-01",
    }
    line.update(changes)
    return line


def sf_record(*, line_changes: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """An Opportunity as the Salesforce pull reads it, lines under ``_lines``."""
    record: dict[str, Any] = {
        "Id": "006R0000000001AAAA",
        "Name": "Fuzzed deal",
        "CloseDate": "2026-11-01",
        "CurrencyIsoCode": "USD",
        "Amount": Decimal("180.00"),
        "SystemModstamp": "2026-11-02T09:30:00.000+0000",
        "Billing_Platform__c": "QuickBooks",
        "Account": {
            "Id": "001R0000000001AAAA",
            "Name": "O'Brien & Sons",
            "AccountNumber": "AC-00001",
            "Billing_Email__c": "ap@obrien.example",
            "BillingStreet": "1 Market St",
            "BillingCity": "Austin",
            "BillingCountry": "US",
        },
        "_lines": [sf_line(**(line_changes or {}))],
    }
    record.update(changes)
    return record


def record_to_outcome(record: dict[str, Any], the_planner: Planner) -> Outcome:
    """What billsync makes of one record: the converter's refusal, or the plan."""
    lines = record.get("_lines") or []
    fields = {k: v for k, v in record.items() if k != "_lines"}
    try:
        deal = to_deal(
            fields,
            lines,
            paths=DealFieldPaths(),
            multi_currency=True,
            company_currency="USD",
        )
    except RecordProblem as problem:
        return problem
    return plan_invoice(deal, the_planner)
