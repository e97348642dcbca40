"""Payment: money received from a customer, applied to invoices (and credit memos).

A line `{"Amount", "LinkedTxn": [{"TxnId", "TxnType": "Invoice"}]}` applies that
amount to the invoice; a line linking a CreditMemo draws that much of its remaining
credit into the payment. Whatever is not applied is `UnappliedAmt`. Voiding keeps the
payment with every amount at 0 (PrivateNote "Voided") and gives the invoices their
balance back; deleting does the same and leaves a tombstone for CDC.
"""

from __future__ import annotations

from decimal import Decimal

from billsync.sandbox.quickbooks import balances
from billsync.sandbox.quickbooks.errors import business, deleted_txn, invalid, not_found, required
from billsync.sandbox.quickbooks.spec import Spec, Write
from billsync.sandbox.quickbooks.store import Record
from billsync.sandbox.quickbooks.timefmt import company_date
from billsync.sandbox.quickbooks.values import money, qbo_number, ref_value, to_decimal

ZERO = Decimal("0")
LINKABLE = ("Invoice", "CreditMemo")


class PaymentSpec(Spec):
    entity = "Payment"
    derived = frozenset({"UnappliedAmt", "HomeTotalAmt"})
    deletable = True

    def prepare(self, w: Write, record: Record, old: Record | None) -> None:
        customer_id = ref_value(record.get("CustomerRef"))
        if not customer_id:
            raise required("CustomerRef")
        customer = w.realm.get("Customer", customer_id)
        if customer is None or not customer.get("Active", True):
            raise not_found("CustomerRef")
        record["CustomerRef"] = {"value": customer_id, "name": customer["DisplayName"]}
        total = to_decimal(record.get("TotalAmt"), "TotalAmt")
        if total is None:
            raise required("TotalAmt")
        if total < 0:
            raise business("The payment amount cannot be negative.", "TotalAmt")
        record["TotalAmt"] = qbo_number(money(total))
        self._currency(w, record, customer)
        previous = balances.applications(old) if old else {}
        record["Line"] = [self._line(w, raw, customer_id, previous) for raw in _lines(record)]
        left = balances.unapplied(record)
        if left < 0:
            raise business(
                f"The amount applied to invoices exceeds the payment amount by {-left}.",
                "Line.Amount",
            )
        record["UnappliedAmt"] = qbo_number(left)
        txn_date = record.get("TxnDate") or company_date(w.now).isoformat()
        record["TxnDate"] = str(txn_date)[:10]

    def _currency(self, w: Write, record: Record, customer: Record) -> None:
        home = w.realm.preferences.home_currency
        own = ref_value(customer.get("CurrencyRef")) or home
        currency = ref_value(record.get("CurrencyRef")) or own
        if currency != own:
            raise business(
                f"The payment currency {currency} must match the customer's currency {own}.",
                "CurrencyRef",
            )
        record["CurrencyRef"] = {"value": currency, "name": currency}
        rate = to_decimal(record.get("ExchangeRate"), "ExchangeRate")
        if currency == home:
            record.pop("ExchangeRate", None)
            return
        if rate is None or rate <= 0:
            raise business(
                f"An exchange rate is required for a payment in {currency}.", "ExchangeRate"
            )
        record["ExchangeRate"] = rate
        record["HomeTotalAmt"] = qbo_number(money(money(total_of(record)) * rate))

    def _line(
        self,
        w: Write,
        raw: Record,
        customer_id: str,
        previous: dict[tuple[str, str], Decimal],
    ) -> Record:
        value = to_decimal(raw.get("Amount"), "Line.Amount")
        if value is None:
            raise required("Line.Amount")
        if value < 0:
            raise business("A payment line amount cannot be negative.", "Line.Amount")
        links = raw.get("LinkedTxn") or []
        if not isinstance(links, list) or not links:
            raise required("Line.LinkedTxn")
        kept = []
        for link in links:
            kind = str(link.get("TxnType") or "")
            txn_id = str(link.get("TxnId") or "")
            if kind not in LINKABLE:
                raise invalid(
                    f"A payment line can link an Invoice or a CreditMemo, not {kind!r}",
                    "Line.LinkedTxn.TxnType",
                )
            target = w.realm.get(kind, txn_id)
            if target is None:
                raise deleted_txn(kind)
            if ref_value(target.get("CustomerRef")) != customer_id:
                raise business(
                    f"{kind} {txn_id} belongs to another customer than this payment.",
                    "Line.LinkedTxn",
                )
            available = money(
                balances.amount(target, "Balance") + previous.get((kind, txn_id), ZERO)
            )
            if value > available:
                raise business(
                    f"The amount applied to {kind} {txn_id} ({value}) is more than its "
                    f"open balance ({available}).",
                    "Line.Amount",
                )
            kept.append({"TxnId": txn_id, "TxnType": kind})
        return {"Amount": qbo_number(money(value)), "LinkedTxn": kept}

    def commit(self, w: Write, record: Record, old: Record | None) -> None:
        before = balances.applications(old) if old else {}
        after = balances.applications(record)
        balances.refresh(w, balances.set_applications(w, record["Id"], before, after))

    def forget(self, w: Write, record: Record) -> None:
        before = balances.applications(record)
        balances.refresh(w, balances.set_applications(w, record["Id"], before, {}))

    def void(self, w: Write, record: Record) -> None:
        record["Line"] = [{**line, "Amount": Decimal("0.0")} for line in _lines(record)]
        record["TotalAmt"] = Decimal("0.0")
        record["UnappliedAmt"] = Decimal("0.0")
        record.pop("HomeTotalAmt", None)
        note = str(record.get("PrivateNote") or "")
        record["PrivateNote"] = f"Voided - {note}" if note else "Voided"


def _lines(record: Record) -> list[Record]:
    lines = record.get("Line")
    if lines is None:
        return []
    if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
        raise invalid("Line must be a list of objects", "Line")
    return lines


def total_of(record: Record) -> Decimal:
    return balances.amount(record, "TotalAmt")
