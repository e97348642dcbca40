"""`read_invoice_money`: invoices and the payments that touch them, read fresh.

The target is the authority (DESIGN.md "Money model"): an invoice's money is what
QuickBooks shows now. Reads are batched: one ``Id IN (...)`` query for the invoices,
then one for every Payment their ``LinkedTxn`` names — two queries for a batch of
invoices however many payments they have (more only past ~350 ids, where a statement
would exceed `query.MAX_CHARS`).

Facts, keyed like the hints in `events` (and the ledger's rows before them):

- ``<payment>:invoice:<invoice>`` (payment): the cash part of the payment's
  applications to this invoice; ``…:credit`` (credit): the part drawn from credit
  memos, split by `events.split_applications` (the credit is allotted to the invoice
  applications in line order).
- ``<payment>:invoice:<invoice>:unapplied`` (unapplied): ``UnappliedAmt`` of a payment
  that links only this invoice — an overpayment of it. QuickBooks keeps it as customer
  credit and it is never applied to the invoice: ``Balance`` ignores it, also when a
  credit memo on the invoice is voided later and the invoice owes again (the money stays
  unapplied on the payment). So it is its own kind, which ``billsync.core.money_state`` shows as
  overpaid and never lets lower the balance.
- A voided payment still linked → its facts with state ``void`` and amount 0.

Credit memos reach an invoice only through a Payment: Intuit's Invoice reference lists
the LinkedTxn types of an invoice (Estimate, TimeActivity, the billable-expense charges,
and Payment — "Links to payments applied to an Invoice object are returned … with
LinkedTxn.TxnType set to Payment", established in the UI only), and applying a credit
memo through the API is a Payment (often of 0) with one line linking the invoice and
one linking the CreditMemo (Intuit's "Manage linked transactions"; Breadwinner's
"Applying Credit to an Invoice": "create a zero-dollar payment, which is the link between
the Credit Memo and the Invoice"). Were a CreditMemo ever linked directly, its applied
amount per invoice would not be known; it is logged (``quickbooks.unmodelled_link``) and
reconciliation sees ``reported_balance`` disagree with the facts.

Document status: voided (`convert.is_voided`) → void; ``Balance`` 0 with payments →
paid; otherwise open. A deleted invoice is absent from the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from billsync.connectors.quickbooks.catalog import QboCatalog
from billsync.connectors.quickbooks.client import QboClient
from billsync.connectors.quickbooks.convert import (
    amount,
    deal_from_note,
    is_voided,
    parse_time,
    ref_value,
)
from billsync.connectors.quickbooks.events import (
    linked_invoice_ids,
    linked_payment_ids,
    split_applications,
)
from billsync.connectors.quickbooks.query import in_list, in_lists, select
from billsync.core import money
from billsync.core.canonical import FactState, InvoiceMoney, InvoiceStatus, MoneyFact, MoneyFactKind
from billsync.core.logs import get_logger

__all__ = ["invoice_money", "read_invoice_money"]

log = get_logger("billsync.quickbooks.money")
Record = Mapping[str, Any]
PER_QUERY = 1000  # QBO's MAXRESULTS cap; in_lists also keeps each statement short
MODELLED_LINKS = frozenset({"Payment", "Estimate", "TimeActivity", "ReimburseCharge",
                            "ChargeCredit", "StatementCharge"})  # fmt: skip


def read_invoice_money(
    client: QboClient, catalog: QboCatalog, external_ids: Sequence[str]
) -> dict[str, InvoiceMoney]:
    """The current money of each invoice that still exists, by id (see module doc)."""
    invoices = _query_by_id(client, "Invoice", external_ids)
    payment_ids = [p for inv in invoices.values() for p in linked_payment_ids(inv)]
    payments = _query_by_id(client, "Payment", payment_ids)
    return {
        invoice_id: invoice_money(record, payments, catalog.currency_of(record))
        for invoice_id, record in invoices.items()
    }


def _query_by_id(client: QboClient, entity: str, ids: Iterable[str]) -> dict[str, Record]:
    found: dict[str, Record] = {}
    for chunk in in_lists(ids, max_values=PER_QUERY):
        rows = client.query(select(entity, f"Id IN {in_list(chunk)}")).get(entity, [])
        found.update({str(row["Id"]): row for row in rows})
    return found


def invoice_money(invoice: Record, payments: Mapping[str, Record], currency: str) -> InvoiceMoney:
    """One invoice's money from its record and the Payments (by id) it links."""
    invoice_id = str(invoice["Id"])

    def cash(value: Any) -> Decimal:
        return money.to_currency_precision(amount(value), currency)

    total = cash(invoice.get("TotalAmt"))
    tax = cash((invoice.get("TxnTaxDetail") or {}).get("TotalTax"))
    balance = cash(invoice.get("Balance", invoice.get("TotalAmt")))
    facts: list[MoneyFact] = []
    for payment_id in linked_payment_ids(invoice):
        payment = payments.get(payment_id)
        if payment is None:
            continue  # deleted between the two queries: its application is gone too
        facts += _payment_facts(payment, invoice_id, currency)
    _warn_unmodelled(invoice)
    return InvoiceMoney(
        target="quickbooks",
        external_id=invoice_id,
        currency=currency,
        status=_status(invoice, balance, bool(linked_payment_ids(invoice))),
        net=total - tax,
        tax=tax,
        total=total,
        facts=tuple(facts),
        reported_balance=balance,
        reported_paid=total - balance,
        due_date=_date(invoice.get("DueDate")),
        issue_date=_date(invoice.get("TxnDate")),
        terms=_terms(invoice.get("SalesTermRef")),
        version=str(invoice["SyncToken"]) if invoice.get("SyncToken") is not None else None,
        deal_id=deal_from_note(invoice.get("PrivateNote")),
        number=str(invoice["DocNumber"]) if invoice.get("DocNumber") else None,
    )


def _payment_facts(payment: Record, invoice_id: str, currency: str) -> list[MoneyFact]:
    pid = str(payment["Id"])
    key = f"{pid}:invoice:{invoice_id}"
    version = str(payment.get("SyncToken", "0"))
    at = _occurred_at(payment)

    def fact(fact_id: str, kind: MoneyFactKind, value: Decimal, state: FactState) -> MoneyFact:
        return MoneyFact(
            fact_id=fact_id,
            kind=kind,
            state=state,
            amount=money.to_currency_precision(value, currency),
            occurred_at=at,
            version=version,
        )

    if is_voided(payment):
        if invoice_id not in linked_invoice_ids(payment):
            return []
        return [fact(key, MoneyFactKind.PAYMENT, Decimal(0), FactState.VOID)]
    cash = credit = Decimal(0)
    for part in split_applications(payment):
        if part.invoice_id == invoice_id:
            cash += part.cash
            credit += part.credit
    facts: list[MoneyFact] = []
    if cash > 0:
        facts.append(fact(key, MoneyFactKind.PAYMENT, cash, FactState.APPLIED))
    if credit > 0:
        facts.append(fact(f"{key}:credit", MoneyFactKind.CREDIT, credit, FactState.APPLIED))
    unapplied = amount(payment.get("UnappliedAmt"))
    if unapplied > 0 and linked_invoice_ids(payment) == [invoice_id]:
        facts.append(
            fact(f"{key}:unapplied", MoneyFactKind.UNAPPLIED, unapplied, FactState.APPLIED)
        )
    return facts


def _occurred_at(payment: Record) -> datetime:
    """When the money came: the payment's TxnDate (what the customer and the books say),
    at its CreateTime when created that same company day, else at 00:00 UTC."""
    meta = payment.get("MetaData") or {}
    created = meta.get("CreateTime") or meta.get("LastUpdatedTime")
    txn_date = _date(payment.get("TxnDate"))
    if created and (txn_date is None or str(created)[:10] == txn_date.isoformat()):
        return parse_time(created)
    if txn_date is not None:
        return datetime.combine(txn_date, time(), UTC)
    return parse_time(created)


def _status(invoice: Record, balance: Decimal, has_payments: bool) -> InvoiceStatus:
    if is_voided(invoice):
        return InvoiceStatus.VOID
    if balance == 0 and has_payments:
        return InvoiceStatus.PAID
    return InvoiceStatus.OPEN


def _date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    return date.fromisoformat(str(value)[:10])


def _terms(ref: Any) -> str | None:
    if not isinstance(ref, Mapping):
        return None
    name = ref.get("name")
    return str(name) if name not in (None, "") else ref_value(ref)


def _warn_unmodelled(invoice: Record) -> None:
    for link in invoice.get("LinkedTxn") or []:
        kind = str(link.get("TxnType"))
        if kind not in MODELLED_LINKS:
            log.warning(
                "quickbooks.unmodelled_link",
                invoice=str(invoice["Id"]),
                txn_type=kind,
                txn_id=str(link.get("TxnId")),
            )
