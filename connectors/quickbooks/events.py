"""Payments, credit memos and voids as `PaymentEvent`s (vendor JSON → canonical).

One Payment can pay several invoices: each ``Line`` applies an amount to the
documents in its ``LinkedTxn``. Lines linking a CreditMemo draw that credit into the
payment. So, for a Payment:

- each invoice application is split into its credit part and its cash part: the
  payment's credit (the sum of its CreditMemo lines) is allotted to the invoice lines
  in order, the rest of each application is cash;
- cash → ``paid`` when the invoice's current Balance is 0, else ``partially_paid``;
  credit → ``credited``;
- ``UnappliedAmt`` (an overpayment, or money not yet applied) → a ``paid`` event on the
  invoice when the payment links exactly one (an overpayment of it, which
  reconciliation reports), else with no invoice (``invoice_external_id=None``);
- a voided payment (QuickBooks zeroes its amounts and notes "Voided") → one ``voided``
  event per money row it produced, amount 0 (QuickBooks no longer says how much), with
  the SAME ``provider_payment_id`` as that row: the engine reverses the recorded row;
- a deleted payment → one ``voided`` event with no invoice, amount 0, and
  ``provider_payment_id`` = the payment id: every row keyed ``<payment id>:…`` is its.

``provider_payment_id`` is the key of one money row (the ledger dedupes on it):
``<payment>:invoice:<invoice>`` (cash), ``…:credit``, ``…:unapplied``, or
``<payment>:unapplied``. ``event_id`` is ``quickbooks:payment:<that key>`` (plus
``:voided``), the same whether a webhook or CDC reported the fact. An invoice voided
or deleted out of band → ``voided`` on that invoice with no ``provider_payment_id``
(``quickbooks:invoice:<id>:voided`` / ``…:deleted``): that is the invoice's own void.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.quickbooks.convert import amount, deal_from_note, is_voided, parse_time, ref_value
from sync import money
from sync.canonical import PaymentEvent, PaymentKind

__all__ = [
    "deleted_invoice_events",
    "deleted_payment_events",
    "invoice_events",
    "linked_invoice_ids",
    "payment_events",
]

PROVIDER = "quickbooks"
Record = Mapping[str, Any]


def _when(record: Record, field: str = "LastUpdatedTime") -> datetime:
    meta = record.get("MetaData") or {}
    return parse_time(meta.get(field) or meta.get("LastUpdatedTime"))


def _applications(payment: Record) -> tuple[list[tuple[str, Decimal]], Decimal]:
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


def linked_invoice_ids(payment: Record) -> list[str]:
    return list(dict.fromkeys(txn for txn, _ in _applications(payment)[0]))


def payment_events(
    payment: Record, invoices: Mapping[str, Record], home_currency: str
) -> list[PaymentEvent]:
    """Events for a Payment as it is now; ``invoices`` by id give current Balances."""
    pid = str(payment["Id"])
    currency = ref_value(payment.get("CurrencyRef")) or home_currency
    applications, credit = _applications(payment)

    def event(key: str, invoice: str | None, kind: PaymentKind, value: Decimal) -> PaymentEvent:
        voided = kind is PaymentKind.VOIDED
        return PaymentEvent(
            provider=PROVIDER,
            event_id=f"{PROVIDER}:payment:{key}" + (":voided" if voided else ""),
            invoice_external_id=invoice,
            kind=kind,
            amount=money.to_currency_precision(value, currency),
            currency=currency,
            occurred_at=_when(payment, "LastUpdatedTime" if voided else "CreateTime"),
            provider_payment_id=key,
        )

    linked = linked_invoice_ids(payment)
    if is_voided(payment):
        zero = Decimal(0)
        events = [event(f"{pid}:invoice:{i}", i, PaymentKind.VOIDED, zero) for i in linked]
        if _links_credit(payment):
            events += [
                event(f"{pid}:invoice:{i}:credit", i, PaymentKind.VOIDED, zero) for i in linked
            ]
        return events
    events = []
    for invoice_id, applied in applications:
        if applied <= 0:
            continue
        from_credit = min(credit, applied)
        credit -= from_credit
        cash = applied - from_credit
        key = f"{pid}:invoice:{invoice_id}"
        if from_credit > 0:
            events.append(event(f"{key}:credit", invoice_id, PaymentKind.CREDITED, from_credit))
        if cash > 0:
            balance = amount((invoices.get(invoice_id) or {}).get("Balance", 1))
            kind = PaymentKind.PAID if balance == 0 else PaymentKind.PARTIALLY_PAID
            events.append(event(key, invoice_id, kind, cash))
    unapplied = amount(payment.get("UnappliedAmt"))
    if unapplied > 0:
        only = linked[0] if len(linked) == 1 else None
        key = f"{pid}:invoice:{only}:unapplied" if only else f"{pid}:unapplied"
        events.append(event(key, only, PaymentKind.PAID, unapplied))
    return events


def _links_credit(payment: Record) -> bool:
    return any(
        str(link.get("TxnType")) == "CreditMemo"
        for line in payment.get("Line") or []
        for link in line.get("LinkedTxn") or []
    )


def deleted_payment_events(
    payment_id: str, occurred_at: datetime, home_currency: str
) -> list[PaymentEvent]:
    return [
        PaymentEvent(
            provider=PROVIDER,
            event_id=f"{PROVIDER}:payment:{payment_id}:deleted",
            invoice_external_id=None,
            kind=PaymentKind.VOIDED,
            amount=money.to_currency_precision(Decimal(0), home_currency),
            currency=home_currency,
            occurred_at=occurred_at,
            provider_payment_id=payment_id,
        )
    ]


def invoice_events(invoice: Record, home_currency: str) -> list[PaymentEvent]:
    """A voided invoice of ours → ``voided``; anything else about an invoice is not a
    money fact (balances move through payments)."""
    if not is_voided(invoice) or deal_from_note(invoice.get("PrivateNote")) is None:
        return []
    currency = ref_value(invoice.get("CurrencyRef")) or home_currency
    invoice_id = str(invoice["Id"])
    return [
        PaymentEvent(
            provider=PROVIDER,
            event_id=f"{PROVIDER}:invoice:{invoice_id}:voided",
            invoice_external_id=invoice_id,
            kind=PaymentKind.VOIDED,
            amount=money.to_currency_precision(Decimal(0), currency),
            currency=currency,
            occurred_at=_when(invoice),
        )
    ]


def deleted_invoice_events(
    invoice_id: str, occurred_at: datetime, home_currency: str
) -> list[PaymentEvent]:
    """A deleted invoice leaves only its id: reported whoever created it (the engine
    ignores ids it does not know)."""
    return [
        PaymentEvent(
            provider=PROVIDER,
            event_id=f"{PROVIDER}:invoice:{invoice_id}:deleted",
            invoice_external_id=invoice_id,
            kind=PaymentKind.VOIDED,
            amount=money.to_currency_precision(Decimal(0), home_currency),
            currency=home_currency,
            occurred_at=occurred_at,
        )
    ]
