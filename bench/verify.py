"""Was the job done right? Read the sandbox's state and compare with the dataset.

A scenario's figures only count when its run was correct: every deal invoiced exactly
once, in the right target, for the right total to the minor unit, billed to the right
customer, with no customer created twice. The same check serves billsync and the
reference pipeline: an invoice is tied to its deal by the QuickBooks DocNumber (both
write the deal id there) or the Stripe invoice metadata (``billsync_deal_id`` or the
reference's ``salesforce_opportunity_id``). Stripe drafts are counted apart: a draft
left behind bills nobody but is untidy.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bench.dataset import Expected
from billsync.core import money

STRIPE_DEAL_KEYS = ("billsync_deal_id", "salesforce_opportunity_id")


@dataclass(frozen=True)
class Found:
    target: str
    invoice_id: str
    total: Decimal
    customer_name: str


@dataclass
class Verdict:
    deals: int
    invoiced_once: int = 0
    missing: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    duplicate_customers: list[str] = field(default_factory=list)
    stray_drafts: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.wrong or self.duplicate_customers)

    @property
    def max_invoices_per_deal(self) -> int:
        return 2 if self.duplicated else 1 if self.invoiced_once else 0

    def describe(self) -> str:
        parts = [f"{self.invoiced_once}/{self.deals} deals invoiced exactly once"]
        for label, found in (
            ("missing", self.missing),
            ("with more than one invoice", self.duplicated),
            ("with a wrong target, total or customer", self.wrong),
            ("customers created more than once", self.duplicate_customers),
        ):
            if found:
                parts.append(f"{len(found)} {label} (e.g. {', '.join(found[:3])})")
        if self.stray_drafts:
            parts.append(f"{self.stray_drafts} Stripe drafts left behind")
        return "; ".join(parts)


def invoices_by_deal(state: Mapping[str, Any]) -> tuple[dict[str, list[Found]], int]:
    """Deal id -> the live invoices for it in both targets; and the Stripe draft count."""
    found: dict[str, list[Found]] = defaultdict(list)
    qbo_customers = {
        c["Id"]: c.get("DisplayName", "") for c in state["quickbooks"].get("Customer", [])
    }
    for invoice in state["quickbooks"].get("Invoice", []):
        if str(invoice.get("PrivateNote") or "").startswith("Voided"):
            continue
        customer = qbo_customers.get(str((invoice.get("CustomerRef") or {}).get("value")), "")
        found[str(invoice.get("DocNumber"))].append(
            Found("quickbooks", str(invoice["Id"]), Decimal(invoice["TotalAmt"]), customer)
        )
    stripe_customers = {c["id"]: c.get("name") or "" for c in state["stripe"].get("customers", [])}
    drafts = 0
    for invoice in state["stripe"].get("invoices", []):
        meta = invoice.get("metadata") or {}
        deal_id = next((meta[k] for k in STRIPE_DEAL_KEYS if meta.get(k)), None)
        if invoice["status"] == "draft":
            drafts += 1
            continue
        if deal_id is None or invoice["status"] == "void":
            continue
        currency = str(invoice["currency"]).upper()
        total = money.from_minor_units(int(invoice["total"]), currency)
        customer = stripe_customers.get(str(invoice.get("customer")), "")
        found[str(deal_id)].append(Found("stripe", str(invoice["id"]), total, customer))
    return dict(found), drafts


def verify(state: Mapping[str, Any], expected: Mapping[str, Expected]) -> Verdict:
    found, drafts = invoices_by_deal(state)
    verdict = Verdict(deals=len(expected), stray_drafts=drafts)
    for deal_id, want in expected.items():
        invoices = found.get(deal_id, [])
        if not invoices:
            verdict.missing.append(deal_id)
        elif len(invoices) > 1:
            verdict.duplicated.append(deal_id)
        elif (invoices[0].target, invoices[0].total, invoices[0].customer_name) != (
            want.target,
            want.total,
            want.account_name,
        ):
            verdict.wrong.append(deal_id)
        else:
            verdict.invoiced_once += 1
    names = Counter(c.get("DisplayName") for c in state["quickbooks"].get("Customer", []))
    names.update(c.get("name") for c in state["stripe"].get("customers", []))
    verdict.duplicate_customers = sorted(str(n) for n, count in names.items() if n and count > 1)
    return verdict


def invoices_per_deal(state: Mapping[str, Any]) -> Counter[int]:
    """How many deals have 1, 2, … live invoices (the scale-out duplicate check)."""
    found, _ = invoices_by_deal(state)
    return Counter(len(invoices) for invoices in found.values())
