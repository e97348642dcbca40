"""Open balances: what payments have applied to invoices and credit memos.

`Realm.applied` maps each invoice / credit memo to the amounts payments apply to it.
An invoice's `Balance` is TotalAmt minus those amounts, a credit memo's
`RemainingCredit` likewise, and a customer's `Balance` is the sum of its open invoice
balances. Everything is recomputed from the index for the documents a write touched,
never by scanning all payments.
"""

from __future__ import annotations

from decimal import Decimal

from billsync.sandbox.quickbooks.spec import Write, touch
from billsync.sandbox.quickbooks.store import Record
from billsync.sandbox.quickbooks.values import money, qbo_number, ref_value, to_decimal

ZERO = Decimal("0")
TxnKey = tuple[str, str]


def amount(record: Record, field: str) -> Decimal:
    return to_decimal(record.get(field), field) or ZERO


def applied_total(w: Write, key: TxnKey) -> Decimal:
    return sum(w.realm.applied.get(key, {}).values(), ZERO)


def applications(payment: Record) -> dict[TxnKey, Decimal]:
    """What a payment's lines apply, per linked invoice / credit memo."""
    found: dict[TxnKey, Decimal] = {}
    for line in payment.get("Line") or []:
        value = amount(line, "Amount")
        if not value:
            continue  # a voided payment keeps its lines at 0
        for link in line.get("LinkedTxn") or []:
            key = (str(link.get("TxnType")), str(link.get("TxnId")))
            found[key] = found.get(key, ZERO) + value
    return found


def unapplied(payment: Record) -> Decimal:
    """TotalAmt plus credit taken from credit memos, minus what invoices received."""
    apps = applications(payment)
    to_invoices = sum((v for (t, _), v in apps.items() if t == "Invoice"), ZERO)
    from_credits = sum((v for (t, _), v in apps.items() if t == "CreditMemo"), ZERO)
    return money(amount(payment, "TotalAmt") + from_credits - to_invoices)


def set_applications(
    w: Write, payment_id: str, old: dict[TxnKey, Decimal], new: dict[TxnKey, Decimal]
) -> set[TxnKey]:
    """Replace what one payment applies; returns every document whose balance moved."""
    for key in old:
        w.realm.applied.get(key, {}).pop(payment_id, None)
    for key, value in new.items():
        w.realm.applied.setdefault(key, {})[payment_id] = value
    return set(old) | set(new)


def refresh(w: Write, keys: set[TxnKey]) -> None:
    for entity, doc_id in keys:
        record = w.realm.records.get(entity, {}).get(doc_id)
        if record is None:
            continue
        refresh_document(w, entity, record)
        touch(w, record)


def refresh_document(w: Write, entity: str, record: Record) -> None:
    key = (entity, record["Id"])
    total = amount(record, "TotalAmt")
    open_amount = money(total - applied_total(w, key))
    record["Balance"] = qbo_number(open_amount)
    if entity == "CreditMemo":
        record["RemainingCredit"] = qbo_number(open_amount)
    # Both sides link the payments applied to them (a credit memo: the payments that
    # drew on its credit), as Intuit's "Manage linked transactions" shows for invoices.
    payments = w.realm.applied.get(key, {})
    record["LinkedTxn"] = [{"TxnId": pid, "TxnType": "Payment"} for pid in payments]
    rate = amount(record, "ExchangeRate")
    if rate and ref_value(record.get("CurrencyRef")) != w.realm.preferences.home_currency:
        record["HomeTotalAmt"] = qbo_number(money(total * rate))
        record["HomeBalance"] = qbo_number(money(open_amount * rate))
    if entity == "Invoice":
        track_invoice(w, record["Id"], ref_value(record.get("CustomerRef")), open_amount)


def track_invoice(w: Write, invoice_id: str, customer_id: str | None, balance: Decimal) -> None:
    """Move the customers' balances by this invoice's change (None: it is gone)."""
    realm = w.realm
    before_customer, before = realm.open_invoices.pop(invoice_id, ("", ZERO))
    if before_customer:
        realm.customer_open[before_customer] -= before
    if customer_id:
        realm.open_invoices[invoice_id] = (customer_id, balance)
        realm.customer_open[customer_id] = realm.customer_open.get(customer_id, ZERO) + balance
    for changed in {before_customer, customer_id or ""} - {""}:
        refresh_customer(w, changed)


def refresh_customer(w: Write, customer_id: str) -> None:
    customer = w.realm.records["Customer"].get(customer_id)
    if customer is None:
        return
    customer["Balance"] = qbo_number(money(w.realm.customer_open.get(customer_id, ZERO)))
    customer["BalanceWithJobs"] = customer["Balance"]


def unlink_payments(w: Write, key: TxnKey) -> None:
    """An invoice or credit memo was voided or deleted: the payments applied to it drop
    their lines to it. Money paid to a gone invoice stays on the payment as unapplied
    credit. Credit drawn from a gone credit memo is taken back from the invoices that
    payment applied it to (from its first invoice line on, the order the credit was
    allotted in), so their balances rise again — the payment cannot apply more than
    its amount plus the credit it still holds."""
    by_payment = dict(w.realm.applied.get(key, {}))
    for payment_id in by_payment:
        payment = w.realm.records["Payment"].get(payment_id)
        if payment is None:
            continue
        before = applications(payment)
        payment["Line"] = [
            line
            for line in payment.get("Line") or []
            if not any(
                (str(link.get("TxnType")), str(link.get("TxnId"))) == key
                for link in line.get("LinkedTxn") or []
            )
        ]
        excess = -unapplied(payment)
        if excess > 0:
            payment["Line"] = _take_back(payment["Line"], excess)
        payment["UnappliedAmt"] = qbo_number(unapplied(payment))
        touch(w, payment, bump_sync_token=True)
        moved = set_applications(w, payment_id, before, applications(payment))
        refresh(w, moved - {key})
        w.realm.emit("Payment", payment_id, "Update", w.now)
    w.realm.applied.pop(key, None)


def _take_back(lines: list[Record], excess: Decimal) -> list[Record]:
    kept: list[Record] = []
    for line in lines:
        links = line.get("LinkedTxn") or []
        if excess > 0 and any(str(link.get("TxnType")) == "Invoice" for link in links):
            value = amount(line, "Amount")
            taken = min(value, excess)
            excess -= taken
            if value - taken <= 0:
                continue
            line = {**line, "Amount": qbo_number(money(value - taken))}
        kept.append(line)
    return kept
