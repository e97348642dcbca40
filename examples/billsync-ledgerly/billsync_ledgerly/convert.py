"""Ledgerly JSON ⇄ billsync's canonical models.

Ledgerly sends every amount as a decimal string ("1250.00") and every time as ISO 8601
with an offset; the client's session decodes JSON numbers as Decimal anyway
(`billsync.core.http.VendorSession`), so no amount is ever a float here. Ledgerly
computes no tax: ``total`` is the net.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from billsync.core.canonical import (
    InvoiceDraft,
    InvoiceMoney,
    InvoiceRef,
    InvoiceStatus,
    MoneyFact,
    MoneyFactKind,
    PaymentEvent,
    PaymentKind,
)

__all__ = ["customer_body", "invoice_body", "invoice_money", "invoice_ref", "payment_event"]

# Ledgerly invoice status → billsync's. "partially_paid" is open with money applied.
STATUSES = {
    "draft": InvoiceStatus.DRAFT,
    "open": InvoiceStatus.OPEN,
    "partially_paid": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "void": InvoiceStatus.VOID,
}
# Ledgerly payment events → the kind of hint they are (the read decides the money).
EVENT_KINDS = {
    "payment.created": PaymentKind.PAID,
    "payment.voided": PaymentKind.VOIDED,
}


def customer_body(name: str, email: str | None, currency: str | None, ref: str) -> dict[str, Any]:
    """``external_ref`` holds the source account id: how the customer is found again."""
    return {"name": name, "email": email, "currency": currency, "external_ref": ref}


def invoice_body(draft: InvoiceDraft, customer_id: str) -> dict[str, Any]:
    """The create request. ``reference`` carries the deal id, which `find_invoices` reads
    back without the idempotency key (keys expire after 24 h; references do not)."""
    return {
        "customer": customer_id,
        "currency": draft.currency,
        "reference": draft.deal_id,
        "billsync_key": draft.idempotency_key,
        "memo": draft.memo,
        "po_number": draft.po_number,
        "terms": draft.terms,
        "due_date": draft.due_date.isoformat() if draft.due_date else None,
        "days_until_due": draft.days_until_due,
        "lines": [
            {
                "catalog_code": line.item_ref,
                "description": line.description,
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price),
                "discount_percent": str(line.discount_percent or 0),
                "amount": str(line.amount),
            }
            for line in draft.lines
        ],
        "total": str(draft.total),
    }


def invoice_ref(target: str, invoice: Mapping[str, Any]) -> InvoiceRef:
    return InvoiceRef(
        target=target,
        external_id=invoice["id"],
        deal_id=invoice.get("reference"),
        number=invoice.get("number"),
        url=invoice.get("url"),
        currency=invoice["currency"],
        total=Decimal(invoice["total"]),
        amount_paid=Decimal(invoice["amount_paid"]),
        balance=Decimal(invoice["balance"]),
        status=STATUSES[invoice["status"]],
        tax=Decimal(0),
        due_date=invoice.get("due_date"),
    )


def invoice_money(target: str, invoice: Mapping[str, Any]) -> InvoiceMoney:
    """The invoice's money with one fact per Ledgerly payment, keyed by the payment id;
    a voided payment stays, void, so the ledger's record of it is updated, not lost."""
    facts = tuple(
        MoneyFact(
            fact_id=payment["id"],
            kind=MoneyFactKind.PAYMENT,
            state="void" if payment.get("voided") else "applied",
            amount=Decimal(payment["amount"]),
            occurred_at=datetime.fromisoformat(payment["created_at"]),
        )
        for payment in invoice.get("payments") or ()
    )
    total = Decimal(invoice["total"])
    return InvoiceMoney(
        target=target,
        external_id=invoice["id"],
        currency=invoice["currency"],
        status=STATUSES[invoice["status"]],
        net=total,
        tax=Decimal(0),
        total=total,
        facts=facts,
        reported_balance=Decimal(invoice["balance"]),
        reported_paid=Decimal(invoice["amount_paid"]),
        due_date=invoice.get("due_date"),
        terms=invoice.get("terms"),
        deal_id=invoice.get("reference"),
        number=invoice.get("number"),
    )


def payment_event(provider: str, event: Mapping[str, Any]) -> PaymentEvent | None:
    """A Ledgerly event as a hint, or None for an event that is not about money."""
    kind = EVENT_KINDS.get(str(event.get("type")))
    data = event.get("data") or {}
    if kind is None:
        return None
    return PaymentEvent(
        provider=provider,
        event_id=event["id"],
        invoice_external_id=data.get("invoice"),
        kind=kind,
        amount=Decimal(data["amount"]),
        currency=data["currency"],
        occurred_at=datetime.fromisoformat(event["created_at"]),
        provider_payment_id=data.get("payment"),
    )
