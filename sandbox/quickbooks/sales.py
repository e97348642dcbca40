"""Invoice and CreditMemo: lines, totals, currency, dates and document numbers.

Derived as QBO derives them: TotalAmt = sales lines - discount (tax is not modelled:
TotalTax is always 0), Balance = TotalAmt - what payments applied, a SubTotalLine
generated after the sales lines, DocNumber numbered from 1001 when omitted, DueDate
from the sales term. A line's Amount must equal Qty x UnitPrice within a cent; the
check is skipped when Qty or UnitPrice is 0 or absent, because python-quickbooks sends
0 for both when they were never set.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sandbox.quickbooks import balances
from sandbox.quickbooks.errors import QboFault, business, invalid, not_found, required, too_long
from sandbox.quickbooks.spec import Spec, Write
from sandbox.quickbooks.store import Record
from sandbox.quickbooks.timefmt import company_date
from sandbox.quickbooks.values import CENT, is_blank, money, qbo_number, ref_value, to_decimal

ZERO = Decimal("0")
DOC_NUMBER_MAX = 21
FIRST_DOC_NUMBER = 1001
LINE_TYPES = ("SalesItemLineDetail", "DiscountLineDetail", "SubTotalLineDetail", "DescriptionOnly")


def plain_number(value: Decimal) -> int | Decimal:
    """Qty and UnitPrice come back as 2 or 12.5 (no forced decimal)."""
    return int(value) if value == value.to_integral_value() else value.normalize()


def parse_date(value: Any, element: str) -> date | None:
    if is_blank(value):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise invalid(f"Invalid date for {element}: {value!r}", element) from None


class SalesDocSpec(Spec):
    derived = frozenset(
        {"TotalAmt", "Balance", "HomeBalance", "HomeTotalAmt", "RemainingCredit", "LinkedTxn"}
    )
    deletable = True
    has_terms = True

    def prepare(self, w: Write, record: Record, old: Record | None) -> None:
        _drop_blank_dates(record)
        customer = self._customer(w, record)
        self._currency(w, record, customer)
        total = self._lines(w, record)
        self._dates(w, record)
        self._doc_number(w, record)
        record["TotalAmt"] = qbo_number(total)
        record["TxnTaxDetail"] = {"TotalTax": 0}
        record.setdefault("EmailStatus", "NotSet")
        record.setdefault("PrintStatus", "NotSet")
        if old is not None and total < balances.applied_total(w, (self.entity, old["Id"])):
            raise business(
                f"The {self.entity} total ({total}) cannot be less than the payments "
                "already applied to it.",
                "Line",
            )

    def commit(self, w: Write, record: Record, old: Record | None) -> None:
        realm = w.realm
        if old is not None:
            realm.doc_numbers.pop((self.entity, old["DocNumber"]), None)
        realm.doc_numbers[(self.entity, record["DocNumber"])] = record["Id"]
        if self.entity == "Invoice":
            before = ref_value(old.get("CustomerRef")) if old else ""
            after = ref_value(record.get("CustomerRef"))
            if before and before != after:
                realm.invoices_by_customer.get(before, set()).discard(record["Id"])
            realm.invoices_by_customer.setdefault(after, set()).add(record["Id"])
        balances.refresh_document(w, self.entity, record)

    def forget(self, w: Write, record: Record) -> None:
        realm = w.realm
        realm.doc_numbers.pop((self.entity, record["DocNumber"]), None)
        balances.unlink_payments(w, (self.entity, record["Id"]))
        if self.entity == "Invoice":
            customer_id = ref_value(record.get("CustomerRef"))
            realm.invoices_by_customer.get(customer_id, set()).discard(record["Id"])
            balances.track_invoice(w, record["Id"], None, ZERO)

    def void(self, w: Write, record: Record) -> None:
        """Voiding keeps the document but zeroes every amount; QBO notes it as Voided.
        Payments applied to it keep their money as unapplied credit."""
        balances.unlink_payments(w, (self.entity, record["Id"]))
        lines = []
        for line in record.get("Line") or []:
            line = dict(line)
            line["Amount"] = Decimal("0.0")
            lines.append(line)
        record["Line"] = lines
        record["TotalAmt"] = Decimal("0.0")
        note = str(record.get("PrivateNote") or "")
        record["PrivateNote"] = f"Voided - {note}" if note else "Voided"

    def _customer(self, w: Write, record: Record) -> Record:
        customer_id = ref_value(record.get("CustomerRef"))
        if not customer_id:
            raise required("CustomerRef")
        customer = w.realm.get("Customer", customer_id)
        if customer is None or not customer.get("Active", True):
            raise not_found("CustomerRef")
        record["CustomerRef"] = {"value": customer_id, "name": customer["DisplayName"]}
        return customer

    def _currency(self, w: Write, record: Record, customer: Record) -> None:
        prefs = w.realm.preferences
        own = ref_value(customer.get("CurrencyRef")) or prefs.home_currency
        currency = ref_value(record.get("CurrencyRef")) or own
        if currency != prefs.home_currency and not prefs.multicurrency:
            raise business(
                f"Multicurrency is not turned on for this company; the transaction currency "
                f"{currency} is not the home currency {prefs.home_currency}.",
                "CurrencyRef",
            )
        if currency != own:
            raise business(
                f"The transaction currency {currency} must match the customer's currency {own}.",
                "CurrencyRef",
            )
        rate = to_decimal(record.get("ExchangeRate"), "ExchangeRate")
        if currency == prefs.home_currency:
            rate = Decimal(1)
        elif rate is None or rate <= 0:
            # The sandbox keeps no exchange-rate table: a foreign-currency transaction
            # must say its rate. (python-quickbooks always sends ExchangeRate 1, which is
            # accepted: the silent 1:1 rate real users run into.)
            raise business(
                f"An exchange rate is required for a transaction in {currency}.", "ExchangeRate"
            )
        record["CurrencyRef"] = {"value": currency, "name": currency}
        record["ExchangeRate"] = plain_number(rate)

    def _lines(self, w: Write, record: Record) -> Decimal:
        lines = record.get("Line")
        if not isinstance(lines, list):
            lines = []
        kept: list[Record] = []
        discount: Record | None = None
        subtotal = ZERO
        for raw in lines:
            if not isinstance(raw, dict):
                raise invalid("Line must be an object", "Line")
            kind = str(raw.get("DetailType") or "")
            if kind not in LINE_TYPES:
                raise invalid(f"Unsupported line DetailType {kind!r}", "Line.DetailType")
            if kind == "SubTotalLineDetail":
                continue  # generated by the server, resent by clients on full updates
            if kind == "DiscountLineDetail":
                if discount is not None:
                    raise business("Only one discount line is allowed per transaction.", "Line")
                discount = dict(raw)
                continue
            line = dict(raw)
            if kind == "SalesItemLineDetail":
                subtotal += self._sales_line(w, line)
            else:
                line["Amount"] = Decimal("0.0")
            kept.append(line)
        if not any(line["DetailType"] == "SalesItemLineDetail" for line in kept):
            raise business("You must fill out at least one split line.", "Line")
        total = subtotal
        final = list(kept)
        final.append(
            {
                "Amount": qbo_number(subtotal),
                "DetailType": "SubTotalLineDetail",
                "SubTotalLineDetail": {},
            }
        )
        if discount is not None:
            off = self._discount(discount, subtotal)
            total -= off
            final.append(discount)
        if total < 0:
            raise business("The transaction total cannot be negative.", "Line")
        for number, line in enumerate(final, start=1):
            if line["DetailType"] != "SubTotalLineDetail":
                line["Id"] = str(number)
                line["LineNum"] = number
        record["Line"] = final
        return money(total)

    def _sales_line(self, w: Write, line: Record) -> Decimal:
        detail = dict(line.get("SalesItemLineDetail") or {})
        _drop_blank_dates(detail)
        item_id = ref_value(detail.get("ItemRef"))
        if not item_id:
            raise required("Line.SalesItemLineDetail.ItemRef")
        item = w.realm.get("Item", item_id)
        if item is None or not item.get("Active", True):
            label = item["Name"] if item else f"Item {item_id}"
            raise not_found(
                "Line.SalesItemLineDetail.ItemRef",
                "Invalid Reference Id : Item assigned to this transaction has been deleted. "
                f"Before you can modify this transaction, you must restore {label} (deleted).",
            )
        detail["ItemRef"] = {"value": item_id, "name": item["Name"]}
        amount = to_decimal(line.get("Amount"), "Line.Amount")
        if amount is None:
            raise required("Line.Amount")
        qty = to_decimal(detail.get("Qty"), "Qty")
        price = to_decimal(detail.get("UnitPrice"), "UnitPrice")
        if qty and price and abs(qty * price - amount) > CENT:
            raise QboFault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: Amount calculation incorrect in the request. "
                f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
                "Line.Amount",
            )
        for key, value in (("Qty", qty), ("UnitPrice", price)):
            if value is None:
                detail.pop(key, None)
            else:
                detail[key] = plain_number(value)
        line["SalesItemLineDetail"] = detail
        line["Amount"] = qbo_number(money(amount))
        return money(amount)

    def _discount(self, line: Record, subtotal: Decimal) -> Decimal:
        detail = dict(line.get("DiscountLineDetail") or {})
        if detail.get("PercentBased") in (True, "true"):
            percent = to_decimal(detail.get("DiscountPercent"), "DiscountPercent")
            if percent is None:
                raise required("Line.DiscountLineDetail.DiscountPercent")
            off = money(subtotal * percent / 100)
            detail["DiscountPercent"] = plain_number(percent)
        else:
            given = to_decimal(line.get("Amount"), "Line.Amount")
            if given is None:
                raise required("Line.Amount")
            off = money(given)
        line["DiscountLineDetail"] = detail
        line["Amount"] = qbo_number(off)
        return off

    def _dates(self, w: Write, record: Record) -> None:
        txn_date = parse_date(record.get("TxnDate"), "TxnDate") or company_date(w.now)
        record["TxnDate"] = txn_date.isoformat()
        if not self.has_terms:
            record.pop("DueDate", None)
            return
        due_days = 0
        term_id = ref_value(record.get("SalesTermRef"))
        if term_id:
            term = w.realm.get("Term", term_id)
            if term is None or not term.get("Active", True):
                raise not_found("SalesTermRef")
            record["SalesTermRef"] = {"value": term_id, "name": term["Name"]}
            due_days = int(term.get("DueDays") or 0)
        due = parse_date(record.get("DueDate"), "DueDate")
        record["DueDate"] = (due or txn_date + timedelta(days=due_days)).isoformat()

    def _doc_number(self, w: Write, record: Record) -> None:
        realm = w.realm
        number = str(record.get("DocNumber") or "").strip()
        if not number:
            next_value = realm.doc_counter.get(self.entity, FIRST_DOC_NUMBER)
            while (self.entity, str(next_value)) in realm.doc_numbers:
                next_value += 1
            realm.doc_counter[self.entity] = next_value + 1
            number = str(next_value)
        if len(number) > DOC_NUMBER_MAX:
            raise too_long("DocNumber", DOC_NUMBER_MAX, len(number))
        owner = realm.doc_numbers.get((self.entity, number))
        duplicate = owner is not None and owner != record.get("Id")
        if duplicate and realm.preferences.warn_duplicate_doc_number:
            raise QboFault(
                "6140",
                "Duplicate Document Number Error",
                "Duplicate Document Number Error : You must specify a different number. "
                f"This number has already been used. DocNumber={number} is assigned to "
                f"TxnType={self.entity} with TxnId={owner}",
                "DocNumber",
            )
        record["DocNumber"] = number


class InvoiceSpec(SalesDocSpec):
    entity = "Invoice"

    def send(self, w: Write, record: Record, send_to: str | None) -> None:
        address = send_to or ref_value_address(record.get("BillEmail"))
        if not address:
            raise business("You must specify an email address to send this invoice to.")
        record["BillEmail"] = {"Address": address}
        record["EmailStatus"] = "EmailSent"
        record["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": w.stamp}


class CreditMemoSpec(SalesDocSpec):
    entity = "CreditMemo"
    has_terms = False


def _drop_blank_dates(record: Record) -> None:
    """python-quickbooks sends "" for every unset date (ShipDate, ServiceDate...)."""
    for key in [k for k, v in record.items() if k.endswith("Date") and v == ""]:
        del record[key]


def ref_value_address(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("Address") or "")
    return ""
