"""QuickBooks changes as `PaymentEvent` hints (vendor JSON → canonical).

Events are hints (billsync/core/protocols.py `PaymentFeed`): each names the invoice and/or the
payment that changed, and the engine re-reads the invoices concerned
(`QboPaymentFeed.read_invoice_money`, built in `money`). Amounts and kinds travel for
people and for the "payment for an unknown invoice" discrepancy only; nobody believes
them about an invoice's money.

One Payment can pay several invoices: each ``Line`` applies an amount to the documents
in its ``LinkedTxn``. Lines linking a CreditMemo draw that credit into the payment. The
split rule (`split_applications`, shared with `money`): the payment's credit (the sum
of its CreditMemo lines) is allotted to the invoice applications in line order, the
rest of each application is cash.

- A live Payment → one event per invoice part (cash → ``paid``, credit → ``credited``)
  and, for ``UnappliedAmt``, a ``paid`` event on the invoice when the payment links
  exactly one (an overpayment of it), else with no invoice. Every one carries
  ``provider_payment_id`` = the payment id, so the engine also re-reads every invoice
  the ledger holds a fact ``<payment id>:…`` for: a payment edited, moved to another
  invoice or re-applied is seen on the invoice it used to pay.
- A voided payment (QuickBooks zeroes its amounts, PrivateNote "Voided") → one
  ``voided`` event per invoice it still links, amount 0, same ``provider_payment_id``;
  one with no invoice when it links none.
- A deleted payment → one ``voided`` event with no invoice, amount 0,
  ``provider_payment_id`` = the payment id (the ledger knows where it applied).
- A CreditMemo created, changed, voided or deleted → one hint per Payment its
  ``LinkedTxn`` names (``provider_payment_id`` = that payment: credit reaches invoices
  through payments), plus one with ``provider_payment_id = creditmemo:<id>``.
- An Invoice changed in any way (due date, terms, lines, void) → a hint naming it
  (``voided`` when QuickBooks shows it voided); deleted → ``voided`` naming it. The
  engine ignores invoices it does not know.

``event_id`` includes the object's SyncToken (``v<n>``) so an edit is a new event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from billsync.connectors.quickbooks.convert import amount, is_voided, parse_time, ref_value
from billsync.core import money
from billsync.core.canonical import PaymentEvent, PaymentKind

__all__ = [
    "Application",
    "credit_memo_events",
    "deleted_credit_memo_events",
    "deleted_invoice_events",
    "deleted_payment_events",
    "invoice_events",
    "invoice_hint",
    "linked_invoice_ids",
    "linked_payment_ids",
    "payment_events",
    "split_applications",
]

PROVIDER = "quickbooks"
Record = Mapping[str, Any]


@dataclass(frozen=True)
class Application:
    """What one Payment applies to one invoice line, split into cash and credit."""

    invoice_id: str
    cash: Decimal
    credit: Decimal


def _when(record: Record, field: str = "LastUpdatedTime") -> datetime:
    meta = record.get("MetaData") or {}
    return parse_time(meta.get(field) or meta.get("LastUpdatedTime"))


def _version(record: Record) -> str:
    return f"v{record.get('SyncToken', '0')}"


def _raw_applications(payment: Record) -> tuple[list[tuple[str, Decimal]], Decimal]:
    """(invoice id, amount) per invoice application in line order, and the credit
    drawn from credit memos."""
    invoices: list[tuple[str, Decimal]] = []
    credit = Decimal(0)
    for line in payment.get("Line") or []:
        value = amount(line.get("Amount"))
        for link in line.get("LinkedTxn") or []:
            kind, txn = str(link.get("TxnType")), str(link.get("TxnId"))
            if kind == "Invoice":
                invoices.append((txn, value))
            elif kind == "CreditMemo":
                credit += value
    return invoices, credit


def split_applications(payment: Record) -> list[Application]:
    """The payment's invoice applications (positive ones, line order), each split: the
    payment's credit-memo credit is allotted to them in order, the rest is cash."""
    applications, credit = _raw_applications(payment)
    found: list[Application] = []
    for invoice_id, applied in applications:
        if applied <= 0:
            continue
        from_credit = min(credit, applied)
        credit -= from_credit
        found.append(Application(invoice_id, applied - from_credit, from_credit))
    return found


def linked_invoice_ids(payment: Record) -> list[str]:
    return list(dict.fromkeys(txn for txn, _ in _raw_applications(payment)[0]))


def linked_payment_ids(document: Record) -> list[str]:
    """The Payments an Invoice's or CreditMemo's ``LinkedTxn`` names."""
    return list(
        dict.fromkeys(
            str(link.get("TxnId"))
            for link in document.get("LinkedTxn") or []
            if str(link.get("TxnType")) == "Payment" and link.get("TxnId") not in (None, "")
        )
    )


def _hint(
    event_id: str,
    *,
    invoice: str | None,
    kind: PaymentKind,
    value: Decimal,
    currency: str,
    at: datetime,
    payment_id: str | None = None,
) -> PaymentEvent:
    return PaymentEvent(
        provider=PROVIDER,
        event_id=event_id,
        invoice_external_id=invoice,
        kind=kind,
        amount=money.to_currency_precision(value, currency),
        currency=currency,
        occurred_at=at,
        provider_payment_id=payment_id,
    )


def payment_events(payment: Record, home_currency: str) -> list[PaymentEvent]:
    """Hints for a Payment as it is now (rules in the module docstring)."""
    pid = str(payment["Id"])
    currency = ref_value(payment.get("CurrencyRef")) or home_currency
    prefix = f"{PROVIDER}:payment:{pid}:{_version(payment)}"
    at = _when(payment)

    def event(suffix: str, invoice: str | None, kind: PaymentKind, value: Decimal) -> PaymentEvent:
        return _hint(
            f"{prefix}:{suffix}",
            invoice=invoice,
            kind=kind,
            value=value,
            currency=currency,
            at=at,
            payment_id=pid,
        )

    linked = linked_invoice_ids(payment)
    zero = Decimal(0)
    if is_voided(payment):
        if not linked:
            return [event("voided", None, PaymentKind.VOIDED, zero)]
        return [event(f"invoice:{i}:voided", i, PaymentKind.VOIDED, zero) for i in linked]
    events: list[PaymentEvent] = []
    for part in split_applications(payment):
        key = f"invoice:{part.invoice_id}"
        if part.credit > 0:
            events.append(
                event(f"{key}:credit", part.invoice_id, PaymentKind.CREDITED, part.credit)
            )
        if part.cash > 0:
            events.append(event(key, part.invoice_id, PaymentKind.PAID, part.cash))
    unapplied = amount(payment.get("UnappliedAmt"))
    if unapplied > 0:
        only = linked[0] if len(linked) == 1 else None
        key = f"invoice:{only}:unapplied" if only else "unapplied"
        events.append(event(key, only, PaymentKind.PAID, unapplied))
    # A payment moved off every invoice (or one of 0): still a hint for where it was.
    return events or [event("changed", None, PaymentKind.PAID, zero)]


def deleted_payment_events(
    payment_id: str, occurred_at: datetime, home_currency: str
) -> list[PaymentEvent]:
    return [
        _hint(
            f"{PROVIDER}:payment:{payment_id}:deleted",
            invoice=None,
            kind=PaymentKind.VOIDED,
            value=Decimal(0),
            currency=home_currency,
            at=occurred_at,
            payment_id=payment_id,
        )
    ]


def credit_memo_events(memo: Record, home_currency: str) -> list[PaymentEvent]:
    """Hints for a CreditMemo as it is now: the payments that drew on it, and the memo
    itself (``creditmemo:<id>``). Amount 0: credit reaches an invoice through them."""
    memo_id = str(memo["Id"])
    currency = ref_value(memo.get("CurrencyRef")) or home_currency
    prefix = f"{PROVIDER}:creditmemo:{memo_id}:{_version(memo)}"
    kind = PaymentKind.VOIDED if is_voided(memo) else PaymentKind.CREDITED
    at = _when(memo)
    ids = [*linked_payment_ids(memo), f"creditmemo:{memo_id}"]
    return [
        _hint(
            f"{prefix}:{pid}",
            invoice=None,
            kind=kind,
            value=Decimal(0),
            currency=currency,
            at=at,
            payment_id=pid,
        )
        for pid in ids
    ]


def deleted_credit_memo_events(
    memo_id: str, occurred_at: datetime, home_currency: str
) -> list[PaymentEvent]:
    return [
        _hint(
            f"{PROVIDER}:creditmemo:{memo_id}:deleted",
            invoice=None,
            kind=PaymentKind.VOIDED,
            value=Decimal(0),
            currency=home_currency,
            at=occurred_at,
            payment_id=f"creditmemo:{memo_id}",
        )
    ]


def invoice_events(invoice: Record, home_currency: str) -> list[PaymentEvent]:
    """A hint naming an invoice that changed (any change: due date, terms, lines, a
    balance a payment moved, void). An invoice as created and never changed since is
    none: it holds no money yet (and billsync recorded its own when it made them)."""
    invoice_id = str(invoice["Id"])
    currency = ref_value(invoice.get("CurrencyRef")) or home_currency
    meta = invoice.get("MetaData") or {}
    untouched = meta.get("CreateTime") == meta.get("LastUpdatedTime")
    if is_voided(invoice):
        event_id, kind = f"{PROVIDER}:invoice:{invoice_id}:voided", PaymentKind.VOIDED
    elif untouched and str(invoice.get("SyncToken", "0")) == "0":
        return []
    else:
        at = _when(invoice).strftime("%Y%m%dT%H%M%S")
        event_id = f"{PROVIDER}:invoice:{invoice_id}:{_version(invoice)}:{at}"
        settled = amount(invoice.get("Balance", 1)) == 0
        kind = PaymentKind.PAID if settled else PaymentKind.PARTIALLY_PAID
    return [
        _hint(
            event_id,
            invoice=invoice_id,
            kind=kind,
            value=Decimal(0),
            currency=currency,
            at=_when(invoice),
        )
    ]


def invoice_hint(
    invoice_id: str, operation: str, occurred_at: datetime, home_currency: str
) -> list[PaymentEvent]:
    """A hint from a notification alone (no read: the engine reads the invoice anyway)."""
    kind = PaymentKind.VOIDED if operation == "Void" else PaymentKind.PARTIALLY_PAID
    stamp = occurred_at.strftime("%Y%m%dT%H%M%S%f")
    return [
        _hint(
            f"{PROVIDER}:invoice:{invoice_id}:{operation.lower()}:{stamp}",
            invoice=invoice_id,
            kind=kind,
            value=Decimal(0),
            currency=home_currency,
            at=occurred_at,
        )
    ]


def deleted_invoice_events(
    invoice_id: str, occurred_at: datetime, home_currency: str
) -> list[PaymentEvent]:
    """A deleted invoice leaves only its id: reported whoever created it (the engine
    ignores ids it does not know)."""
    return [
        _hint(
            f"{PROVIDER}:invoice:{invoice_id}:deleted",
            invoice=invoice_id,
            kind=PaymentKind.VOIDED,
            value=Decimal(0),
            currency=home_currency,
            at=occurred_at,
        )
    ]
