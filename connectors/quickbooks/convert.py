"""QuickBooks JSON ⇄ canonical models, for customers and invoices.

Bodies are plain dicts written here rather than python-quickbooks objects, whose
``to_json`` always sends ``ExchangeRate: 1`` (booking foreign money at 1:1 without
saying so), ``"PrivateNote": ""`` and blank dates.

Discounts. QuickBooks checks every sales line's ``Amount == Qty × UnitPrice`` and takes
one discount line per invoice. A draft line carries its discounted amount
(``round(qty × price × (1 − d))``). So each sales line is sent at its undiscounted amount
``round(qty × price)`` with the real quantity and unit price (what was sold, as on the
quote), and the discounts of all lines go into ONE amount-based ``DiscountLineDetail``
equal to ``Σ round(qty × price) − Σ line.amount``. QuickBooks' TotalAmt (sales lines
minus the discount line, before tax) is then exactly ``draft.total``, to the cent, for
any mix of discounts; the discount line's description names each discounted line and
its percentage. A per-line net unit price would hide the discount and is only exact
when ``amount / qty`` terminates; a per-line percent discount line is not allowed twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from billsync.core import money
from billsync.core.canonical import Customer, InvoiceDraft, InvoiceLine, InvoiceRef, InvoiceStatus
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = [
    "DEAL_MARKER",
    "amount",
    "customer_body",
    "deal_from_note",
    "display_name",
    "dumps_exact",
    "invoice_body",
    "invoice_ref",
    "invoice_status",
    "is_voided",
    "parse_time",
    "ref_value",
]

SYSTEM = "quickbooks"
DEAL_MARKER = "billsync deal "
DOC_NUMBER_MAX = 21
DISPLAY_NAME_MAX = 500
_DEAL_IN_NOTE = re.compile(r"billsync deal (\S+)")
_TAG = "\u0000dec:"
_TAGGED = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')
APP_URL = {
    "production": "https://app.qbo.intuit.com/app/invoice?txnId=",
    "sandbox": "https://app.sandbox.qbo.intuit.com/app/invoice?txnId=",
}


# --- JSON and values -------------------------------------------------------------------


def _tag(value: Any) -> str:
    if isinstance(value, Decimal) and value.is_finite():
        return _TAG + format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps_exact(value: Any) -> str:
    """JSON with every Decimal written as a number, digit for digit (never via float)."""
    return _TAGGED.sub(r"\1", json.dumps(value, default=_tag, separators=(",", ":")))


def amount(value: Any) -> Decimal:
    """A QBO money/quantity value (Decimal or int with ``use_decimal``); 0 when absent."""
    if value is None or value == "":
        return Decimal(0)
    return money.parse_decimal(value)


def ref_value(ref: Any) -> str | None:
    if isinstance(ref, Mapping):
        value = ref.get("value")
        return str(value) if value not in (None, "") else None
    return None


def parse_time(text: Any) -> datetime:
    """A QBO timestamp (``2026-10-02T03:04:05-07:00``, ``…Z``) as aware UTC."""
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {text!r}")
    return moment.astimezone(UTC)


def _invalid(message: str, deal_id: str | None = None, field: str | None = None) -> ConnectorError:
    return ConnectorError(
        system=SYSTEM,
        error_class=ErrorClass.INVALID_DATA,
        message=message,
        code="MAPPING",
        deal_id=deal_id,
        field=field,
    )


# --- customers ---------------------------------------------------------------------


def display_name(name: str, colon_replacement: str, suffix: str = "") -> str:
    """A DisplayName QuickBooks accepts: no ':', trimmed, ≤ 500 characters with suffix."""
    base = " ".join(name.replace(":", colon_replacement).split())
    room = DISPLAY_NAME_MAX - len(suffix)
    return base[:room].rstrip() + suffix


def customer_body(customer: Customer, name: str, home_currency: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "DisplayName": name,
        "CompanyName": customer.name[:100],
        "Notes": f"billsync: Salesforce account {customer.account_id}"
        + (f" ({customer.account_number})" if customer.account_number else ""),
    }
    if customer.email:
        body["PrimaryEmailAddr"] = {"Address": customer.email[:100]}
    address = customer.billing_address
    if address is not None:
        fields = {
            "Line1": address.line1,
            "Line2": address.line2,
            "City": address.city,
            "CountrySubDivisionCode": address.region,
            "PostalCode": address.postal_code,
            "Country": address.country,
        }
        bill = {key: value[:255] for key, value in fields.items() if value}
        if bill:
            body["BillAddr"] = bill
    if customer.currency and customer.currency != home_currency:
        body["CurrencyRef"] = {"value": customer.currency}
    return body


# --- invoices ----------------------------------------------------------------------


def invoice_body(
    draft: InvoiceDraft,
    *,
    customer_id: str,
    home_currency: str,
    term_id: Callable[[str], str | None],
    tax_code_id: Callable[[str], str | None],
    today: date,
) -> dict[str, Any]:
    """The Invoice create body for a draft; ConnectorError(invalid_data) naming the
    field when the draft cannot be expressed in QuickBooks."""
    deal = draft.deal_id
    if draft.currency != home_currency:
        # No exchange rate travels with a draft; sending none (or python-quickbooks' 1)
        # would book the invoice at a wrong rate. The catalog refuses such deals first.
        raise _invalid(
            f"QuickBooks needs an exchange rate for {draft.currency} (home currency "
            f"{home_currency}) and billsync has none; bill the deal in {home_currency} "
            "or through another target",
            deal,
            "currency",
        )
    lines = [_sales_line(line, draft, tax_code_id) for line in draft.lines]
    discount = _discount_line(draft)
    body: dict[str, Any] = {
        "CustomerRef": {"value": customer_id},
        "Line": lines + ([discount] if discount else []),
        "PrivateNote": private_note(draft),
    }
    if draft.doc_number:
        if len(draft.doc_number) > DOC_NUMBER_MAX:
            raise _invalid(
                f"DocNumber '{draft.doc_number}' is longer than {DOC_NUMBER_MAX} characters; "
                "shorten invoice.doc_number in the mapping",
                deal,
                "doc_number",
            )
        body["DocNumber"] = draft.doc_number
    txn_date = draft.issue_date
    if txn_date is not None:
        body["TxnDate"] = txn_date.isoformat()
    if draft.due_date is not None:
        body["DueDate"] = draft.due_date.isoformat()
    elif draft.terms:
        found = term_id(draft.terms)
        if found is None:
            raise _invalid(
                f"payment term '{draft.terms}' does not exist (or is inactive) in QuickBooks; "
                "create it or fix terms.values in the mapping",
                deal,
                "terms",
            )
        body["SalesTermRef"] = {"value": found}
    elif draft.days_until_due is not None:
        start = txn_date or today
        body["TxnDate"] = start.isoformat()
        body["DueDate"] = (start + timedelta(days=draft.days_until_due)).isoformat()
    if draft.memo:
        body["CustomerMemo"] = {"value": draft.memo[:1000]}
    if draft.customer.email:
        body["BillEmail"] = {"Address": draft.customer.email[:100]}
    return body


def private_note(draft: InvoiceDraft) -> str:
    """The deal reference (read back by `deal_from_note`), plus the PO for people."""
    note = f"{DEAL_MARKER}{draft.deal_id}"
    if draft.po_number:
        note += f"; PO {draft.po_number}"
    return note[:4000]


def deal_from_note(note: Any) -> str | None:
    """The deal id in a PrivateNote written by billsync ("Voided - " prefix allowed)."""
    found = _DEAL_IN_NOTE.search(str(note or ""))
    return found.group(1).rstrip(";") if found else None


def _gross(line: InvoiceLine, currency: str) -> Decimal:
    return money.line_amount(line.quantity, line.unit_price, None, currency)


def _sales_line(
    line: InvoiceLine, draft: InvoiceDraft, tax_code_id: Callable[[str], str | None]
) -> dict[str, Any]:
    gross = _gross(line, draft.currency)
    if abs(line.quantity * line.unit_price - gross) > Decimal("0.01"):
        # QBO wants Amount == Qty × UnitPrice; a zero-decimal currency with a
        # fractional quantity can round further than QuickBooks tolerates.
        raise _invalid(
            f"line {line.source_line_id or line.item_ref}: {line.quantity} × {line.unit_price} "
            f"cannot be shown exactly in {draft.currency}; use a whole quantity",
            draft.deal_id,
            "lines",
        )
    detail: dict[str, Any] = {
        "ItemRef": {"value": line.item_ref},
        "Qty": line.quantity,
        "UnitPrice": line.unit_price,
    }
    if line.service_date is not None:
        detail["ServiceDate"] = line.service_date.isoformat()
    if line.tax_code:
        found = tax_code_id(line.tax_code)
        if found is None:
            raise _invalid(
                f"tax code '{line.tax_code}' does not exist in QuickBooks; create it or fix "
                "tax.quickbooks in the mapping",
                draft.deal_id,
                "tax_code",
            )
        detail["TaxCodeRef"] = {"value": found}
    body: dict[str, Any] = {
        "DetailType": "SalesItemLineDetail",
        "Amount": gross,
        "SalesItemLineDetail": detail,
    }
    if line.description:
        body["Description"] = line.description[:4000]
    return body


def _discount_line(draft: InvoiceDraft) -> dict[str, Any] | None:
    currency = draft.currency
    parts: list[str] = []
    total = money.minor_unit(currency) * 0
    for number, line in enumerate(draft.lines, start=1):
        off = _gross(line, currency) - line.amount
        if off:
            total += off
            parts.append(f"line {number} {line.discount_percent or 0}% = {off}")
    if not total:
        return None
    if total < 0:
        raise _invalid(
            "a discount on a credit (negative) line cannot be expressed in QuickBooks; "
            "remove the discount from the credit line",
            draft.deal_id,
            "lines",
        )
    return {
        "DetailType": "DiscountLineDetail",
        "Amount": total,
        "Description": ("Discounts: " + "; ".join(parts))[:4000],
        "DiscountLineDetail": {"PercentBased": False},
    }


def is_voided(record: Mapping[str, Any]) -> bool:
    """QBO has no void flag: a voided transaction keeps its lines at 0 and its
    PrivateNote starts with "Voided"."""
    return amount(record.get("TotalAmt")) == 0 and str(record.get("PrivateNote") or "").startswith(
        "Voided"
    )


def invoice_status(record: Mapping[str, Any]) -> InvoiceStatus:
    if is_voided(record):
        return InvoiceStatus.VOID
    if amount(record.get("Balance", record.get("TotalAmt"))) == 0:
        return InvoiceStatus.PAID
    return InvoiceStatus.OPEN


def invoice_ref(
    record: Mapping[str, Any], *, home_currency: str, environment: str = "production"
) -> InvoiceRef:
    currency = ref_value(record.get("CurrencyRef")) or home_currency
    total = money.to_currency_precision(amount(record.get("TotalAmt")), currency)
    balance = money.to_currency_precision(
        amount(record.get("Balance", record.get("TotalAmt"))), currency
    )
    invoice_id = str(record["Id"])
    return InvoiceRef(
        target=SYSTEM,
        external_id=invoice_id,
        deal_id=deal_from_note(record.get("PrivateNote")),
        number=str(record["DocNumber"]) if record.get("DocNumber") else None,
        url=APP_URL.get(environment, APP_URL["production"]) + invoice_id,
        currency=currency,
        total=total,
        amount_paid=total - balance,
        balance=balance,
        status=invoice_status(record),
        tax=money.to_currency_precision(
            amount((record.get("TxnTaxDetail") or {}).get("TotalTax")), currency
        ),
        due_date=date.fromisoformat(str(record["DueDate"])) if record.get("DueDate") else None,
    )
