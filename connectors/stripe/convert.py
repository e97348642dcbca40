"""Stripe JSON ⇄ canonical models: invoices, customers and the metadata that links them.

Objects arrive as plain dicts (``StripeObject.to_dict()`` or a webhook's JSON); amounts
are integers in Stripe's minor units and become Decimals only through ``amounts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from billsync.connectors.stripe.amounts import from_stripe_amount, stripe_currency
from billsync.connectors.stripe.settings import StripeSettings
from billsync.core.canonical import (
    Customer,
    Discrepancy,
    DiscrepancyKind,
    InvoiceDraft,
    InvoiceRef,
    InvoiceStatus,
)

__all__ = [
    "ACCOUNT_KEY",
    "DEAL_KEY",
    "KEY_KEY",
    "amount",
    "customer_params",
    "invoice_params",
    "invoice_ref",
    "timestamp",
    "total_mismatch",
]

TARGET = "stripe"
# Metadata keys (Stripe: ≤ 40 characters, no brackets, values ≤ 500 characters).
DEAL_KEY = "billsync_deal_id"
KEY_KEY = "billsync_idempotency_key"
ACCOUNT_KEY = "billsync_account_id"

_STATUS = {
    "draft": InvoiceStatus.DRAFT,
    "open": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "void": InvoiceStatus.VOID,
    "uncollectible": InvoiceStatus.UNCOLLECTIBLE,
}
_CUSTOM_FIELD_VALUE_MAX = 140
_DESCRIPTION_MAX = 1000  # [?] Stripe documents no limit for the invoice memo


def amount(value: int | None, currency: str) -> Decimal:
    """A Stripe integer amount as a Decimal at the currency's ISO precision."""
    return from_stripe_amount(int(value or 0), currency)


def timestamp(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    found = obj.get("metadata")
    return found if isinstance(found, Mapping) else {}


def invoice_ref(inv: Mapping[str, Any]) -> InvoiceRef:
    currency = str(inv["currency"])
    return InvoiceRef(
        target=TARGET,
        external_id=str(inv["id"]),
        deal_id=metadata(inv).get(DEAL_KEY),
        number=inv.get("number"),
        url=inv.get("hosted_invoice_url"),
        currency=currency,
        total=amount(inv.get("total"), currency),
        amount_paid=amount(inv.get("amount_paid"), currency),
        balance=amount(inv.get("amount_remaining"), currency),
        status=_STATUS[str(inv["status"])],
        tax=amount(inv.get("total"), currency) - pre_tax_total(inv),
        due_date=due.date() if (due := timestamp(inv.get("due_date"))) else None,
    )


def pre_tax_total(inv: Mapping[str, Any]) -> Decimal:
    """What the draft's total (pre-tax, after line discounts) should equal."""
    value = inv.get("total_excluding_tax")
    return amount(inv.get("total") if value is None else value, str(inv["currency"]))


def total_mismatch(
    draft: InvoiceDraft, inv: Mapping[str, Any], detected_at: datetime
) -> Discrepancy | None:
    """The invoice's pre-tax total against the deal's, as a discrepancy when they differ."""
    actual = pre_tax_total(inv)
    if actual == draft.total:
        return None
    return Discrepancy(
        kind=DiscrepancyKind.INVOICE_TOTAL_MISMATCH,
        deal_id=draft.deal_id,
        target=TARGET,
        external_id=str(inv["id"]),
        expected=draft.total,
        actual=actual,
        detail=(
            f"Stripe invoice {inv['id']} totals {actual} {draft.currency} before tax; the "
            f"deal's lines total {draft.total} (a customer discount, or lines changed in "
            "Stripe)"
        ),
        detected_at=detected_at,
    )


def _date_stamp(day: date) -> int:
    return int(datetime.combine(day, time(0), UTC).timestamp())


def invoice_params(
    draft: InvoiceDraft, customer_id: str, settings: StripeSettings
) -> dict[str, Any]:
    """``POST /v1/invoices`` for the draft: a manual, non-advancing draft invoice that
    takes only the lines we add and names the deal in its metadata."""
    params: dict[str, Any] = {
        "customer": customer_id,
        "currency": stripe_currency(draft.currency),
        "auto_advance": False,
        "pending_invoice_items_behavior": "exclude",
        "metadata": {DEAL_KEY: draft.deal_id, KEY_KEY: draft.idempotency_key},
    }
    if draft.days_until_due is not None or draft.due_date is not None:
        params["collection_method"] = "send_invoice"
        if draft.due_date is not None:
            params["due_date"] = _date_stamp(draft.due_date)
        else:
            params["days_until_due"] = draft.days_until_due
    else:
        params["collection_method"] = "charge_automatically"
    if draft.memo:
        params["description"] = draft.memo[:_DESCRIPTION_MAX]
    if draft.po_number:
        params["custom_fields"] = [
            {"name": "PO number", "value": draft.po_number[:_CUSTOM_FIELD_VALUE_MAX]}
        ]
    if draft.issue_date is not None:
        # The date shown on the invoice (Stripe: effective_at, the finalization date
        # unless set), e.g. the deal's close date when invoicing a backlog.
        params["effective_at"] = _date_stamp(draft.issue_date)
    if settings.automatic_tax or draft.automatic_tax:
        params["automatic_tax"] = {"enabled": True}
    return params


def customer_params(customer: Customer) -> dict[str, Any]:
    params: dict[str, Any] = {
        "name": customer.name,
        "metadata": {ACCOUNT_KEY: customer.account_id},
    }
    if customer.account_number:
        params["metadata"]["billsync_account_number"] = customer.account_number[:500]
    if customer.email:
        params["email"] = customer.email
    address = customer.billing_address
    if address is not None:
        fields = {
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "state": address.region,
            "postal_code": address.postal_code,
            "country": _country(address.country),
        }
        shown = {k: v for k, v in fields.items() if v}
        if shown:
            params["address"] = shown
    return params


def _country(value: str | None) -> str | None:
    """Stripe wants ISO 3166-1 alpha-2; Salesforce often holds names ("Germany"). A
    name is left out rather than guessed (the rest of the address still goes)."""
    text = (value or "").strip()
    return text.upper() if len(text) == 2 and text.isalpha() and text.isascii() else None
