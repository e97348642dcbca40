"""Invoice and CreditMemo: lines, totals, currency, dates and document numbers.

Derived as QBO derives them: net = sales lines - discount, TxnTaxDetail.TotalTax from
the tax codes' rates (`_tax`), TotalAmt = net + TotalTax, Balance = TotalAmt - what
payments applied, a SubTotalLine generated after the sales lines, DocNumber numbered
from 1001 when omitted (duplicates refused only while the company warns about them),
DueDate from the sales term (again when the term changes). A line's Amount must equal
Qty x UnitPrice within a cent; the check is skipped when Qty or UnitPrice is 0 or
absent, because python-quickbooks sends 0 for both when they were never set.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from billsync.sandbox.quickbooks import balances
from billsync.sandbox.quickbooks.errors import (
    QboFault,
    business,
    invalid,
    not_found,
    required,
    too_long,
)
from billsync.sandbox.quickbooks.spec import Spec, Write
from billsync.sandbox.quickbooks.store import Record
from billsync.sandbox.quickbooks.timefmt import company_date
from billsync.sandbox.quickbooks.values import (
    CENT,
    is_blank,
    money,
    qbo_number,
    ref_value,
    to_decimal,
)

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
        net = self._lines(w, record)
        self._dates(w, record, old)
        self._doc_number(w, record)
        tax = self._tax(w, record, net)
        total = money(net + tax)
        record["TotalAmt"] = qbo_number(total)
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
            realm.doc_numbers.get((self.entity, old["DocNumber"]), set()).discard(old["Id"])
        realm.doc_numbers.setdefault((self.entity, record["DocNumber"]), set()).add(record["Id"])
        if self.entity == "Invoice":
            before = ref_value(old.get("CustomerRef")) if old else ""
            after = ref_value(record.get("CustomerRef"))
            if before and before != after:
                realm.invoices_by_customer.get(before, set()).discard(record["Id"])
            realm.invoices_by_customer.setdefault(after, set()).add(record["Id"])
        balances.refresh_document(w, self.entity, record)

    def forget(self, w: Write, record: Record) -> None:
        realm = w.realm
        realm.doc_numbers.get((self.entity, record["DocNumber"]), set()).discard(record["Id"])
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

    def _tax(self, w: Write, record: Record, net: Decimal) -> Decimal:
        """Sales tax, written to TxnTaxDetail; TotalAmt = net + TotalTax.

        A line is taxed at the rates of its TaxCodeRef when that code has a rate list
        (non-US style), else — when its code is taxable (US ``TAX``) — at the rates of
        the transaction's ``TxnTaxDetail.TxnTaxCodeRef``; ``NON`` or no code: untaxed.
        A discount lowers the taxable amounts in proportion (QBO's default "apply
        discount before tax"). Tax is rounded once per rate, half up, to the cent.
        """
        given = record.get("TxnTaxDetail") if isinstance(record.get("TxnTaxDetail"), dict) else {}
        txn_code_id = ref_value((given or {}).get("TxnTaxCodeRef"))
        txn_rates = self._code_rates(w, txn_code_id, "TxnTaxDetail.TxnTaxCodeRef")
        lines = [ln for ln in record["Line"] if ln["DetailType"] == "SalesItemLineDetail"]
        subtotal = sum((to_decimal(ln["Amount"], "Amount") or ZERO for ln in lines), ZERO)
        factor = net / subtotal if subtotal else ZERO
        taxable: dict[str, tuple[Record, Decimal]] = {}
        for line in lines:
            code_id = ref_value(line["SalesItemLineDetail"].get("TaxCodeRef"))
            rates = self._code_rates(w, code_id, "Line.SalesItemLineDetail.TaxCodeRef")
            if not rates and code_id and self._taxable(w, code_id):
                rates = txn_rates
            base = (to_decimal(line["Amount"], "Amount") or ZERO) * factor
            for rate in rates:
                before = taxable.get(rate["Id"], (rate, ZERO))[1]
                taxable[rate["Id"]] = (rate, before + base)
        tax_lines = []
        total_tax = ZERO
        for rate, base in taxable.values():
            percent = to_decimal(rate.get("RateValue"), "RateValue") or ZERO
            amount = money(base * percent / 100)
            total_tax += amount
            tax_lines.append(
                {
                    "Amount": qbo_number(amount),
                    "DetailType": "TaxLineDetail",
                    "TaxLineDetail": {
                        "TaxRateRef": {"value": rate["Id"], "name": rate["Name"]},
                        "PercentBased": True,
                        "TaxPercent": plain_number(percent),
                        "NetAmountTaxable": qbo_number(money(base)),
                    },
                }
            )
        detail: Record = {"TotalTax": qbo_number(money(total_tax))}
        if txn_code_id:
            detail["TxnTaxCodeRef"] = {"value": txn_code_id}
        if tax_lines:
            detail["TaxLine"] = tax_lines
        record["TxnTaxDetail"] = detail
        return money(total_tax)

    @staticmethod
    def _code_rates(w: Write, code_id: str | None, element: str) -> list[Record]:
        if not code_id:
            return []
        code = w.realm.get("TaxCode", code_id)
        if code is None or not code.get("Active", True):
            raise not_found(element)
        details = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
        found = (w.realm.get("TaxRate", ref_value(d.get("TaxRateRef")) or "") for d in details)
        return [rate for rate in found if rate is not None]

    @staticmethod
    def _taxable(w: Write, code_id: str) -> bool:
        code = w.realm.get("TaxCode", code_id)
        return bool(code and code.get("Taxable"))

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

    def _dates(self, w: Write, record: Record, old: Record | None) -> None:
        """TxnDate defaults to today (company time); DueDate, when not given, is TxnDate
        plus the sales term's DueDays (Due on receipt: 0) — and is worked out again when
        an update changes the term or TxnDate and sends the DueDate unchanged (a full
        update resends the stored one; a sparse one keeps it), as QuickBooks' invoice
        form does when the Terms field changes. An explicit new DueDate wins."""
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
        if old is not None and due is not None and due.isoformat() == old.get("DueDate"):
            term_before = ref_value(old.get("SalesTermRef"))
            if (term_before, old.get("TxnDate")) != (term_id, record["TxnDate"]) and term_id:
                due = None
        record["DueDate"] = (due or txn_date + timedelta(days=due_days)).isoformat()

    def _doc_number(self, w: Write, record: Record) -> None:
        realm = w.realm
        number = str(record.get("DocNumber") or "").strip()
        if not number:
            next_value = realm.doc_counter.get(self.entity, FIRST_DOC_NUMBER)
            while realm.doc_numbers.get((self.entity, str(next_value))):
                next_value += 1
            realm.doc_counter[self.entity] = next_value + 1
            number = str(next_value)
        if len(number) > DOC_NUMBER_MAX:
            raise too_long("DocNumber", DOC_NUMBER_MAX, len(number))
        others = realm.doc_numbers.get((self.entity, number), set()) - {record.get("Id")}
        owner = min(others, default=None)
        duplicate = owner is not None
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
