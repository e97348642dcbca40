"""Name-list entities: Customer, Vendor, Employee, Item, Account, Term, TaxRate, TaxCode.

Name lists are never deleted in QBO (`operation=delete` is unsupported): they are
made inactive. Inactive records keep their name reserved (so re-creating "Acme" after
deactivating it fails with 6240, as users of the real service keep discovering), and
transactions may not reference them (610).
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from billsync.sandbox.quickbooks.errors import (
    QboFault,
    business,
    duplicate_name,
    invalid,
    not_found,
    required,
    too_long,
)
from billsync.sandbox.quickbooks.spec import Spec, Write
from billsync.sandbox.quickbooks.store import Record
from billsync.sandbox.quickbooks.values import as_bool, is_blank, qbo_number, ref_value, to_decimal

ZERO = Decimal("0.0")
NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
DISPLAY_NAME_MAX = 500
ITEM_TYPES = ("Service", "NonInventory", "Inventory", "Category", "Group")


class PersonSpec(Spec):
    """Customer, Vendor and Employee share one DisplayName namespace."""

    derived = frozenset({"Balance"})

    def prepare(self, w: Write, record: Record, old: Record | None) -> None:
        name = str(record.get("DisplayName") or "").strip()
        if not name:
            # QBO builds the DisplayName from the name parts when it is not given.
            name = " ".join(str(record.get(p) or "").strip() for p in NAME_PARTS).strip()
            name = " ".join(name.split())
        if not name:
            raise required(
                "DisplayName",
                "Required parameter : one of Title, GivenName, MiddleName, FamilyName, "
                "DisplayName, Suffix is missing",
            )
        if ":" in name:
            raise QboFault(
                "2040",
                "Invalid String",
                f"Invalid character ':' in DisplayName '{name}': names may not contain a colon",
                "DisplayName",
            )
        if len(name) > DISPLAY_NAME_MAX:
            raise too_long("DisplayName", DISPLAY_NAME_MAX, len(name))
        owner = w.realm.display_names.get(name.casefold())
        if owner is not None and owner != (self.entity, record.get("Id")):
            raise duplicate_name(name, owner[1])
        record["DisplayName"] = name
        record["Active"] = as_bool(record.get("Active"), True)
        self.rules(w, record, old)

    def rules(self, w: Write, record: Record, old: Record | None) -> None:
        return None

    def commit(self, w: Write, record: Record, old: Record | None) -> None:
        if old is not None:
            w.realm.display_names.pop(old["DisplayName"].casefold(), None)
        w.realm.display_names[record["DisplayName"].casefold()] = (self.entity, record["Id"])


class VendorSpec(PersonSpec):
    entity = "Vendor"


class EmployeeSpec(PersonSpec):
    entity = "Employee"


class CustomerSpec(PersonSpec):
    entity = "Customer"
    derived = frozenset({"FullyQualifiedName", "Balance", "BalanceWithJobs"})

    def rules(self, w: Write, record: Record, old: Record | None) -> None:
        prefs = w.realm.preferences
        currency = ref_value(record.get("CurrencyRef")) or prefs.home_currency
        if old is not None:
            before = ref_value(old.get("CurrencyRef"))
            if currency != before and w.realm.invoices_by_customer.get(old["Id"]):
                raise business(
                    "You can't change the currency of a customer that has transactions.",
                    "CurrencyRef",
                )
        if currency != prefs.home_currency and not prefs.multicurrency:
            raise business(
                f"Multicurrency is not turned on for this company; {currency} is not "
                f"the home currency ({prefs.home_currency}).",
                "CurrencyRef",
            )
        record["CurrencyRef"] = {"value": currency, "name": currency}
        record["FullyQualifiedName"] = record["DisplayName"]
        # Balance is the sum of open invoice balances, kept by `balances`.
        record["Balance"] = old["Balance"] if old else ZERO
        record["BalanceWithJobs"] = record["Balance"]


class NamedSpec(Spec):
    """Entities whose Name is unique within their own type (Item, Account, Term)."""

    name_max: ClassVar[int] = 100

    def prepare(self, w: Write, record: Record, old: Record | None) -> None:
        name = str(record.get("Name") or "").strip()
        if not name:
            raise required("Name")
        if len(name) > self.name_max:
            raise too_long("Name", self.name_max, len(name))
        owner = w.realm.unique_names.get((self.entity, name.casefold()))
        if owner is not None and owner != record.get("Id"):
            raise duplicate_name(name, owner)
        record["Name"] = name
        record["Active"] = as_bool(record.get("Active"), True)
        self.rules(w, record)

    def rules(self, w: Write, record: Record) -> None:
        return None

    def commit(self, w: Write, record: Record, old: Record | None) -> None:
        if old is not None:
            w.realm.unique_names.pop((self.entity, old["Name"].casefold()), None)
        w.realm.unique_names[(self.entity, record["Name"].casefold())] = record["Id"]


class ItemSpec(NamedSpec):
    entity = "Item"
    derived = frozenset({"FullyQualifiedName"})

    def rules(self, w: Write, record: Record) -> None:
        kind = str(record.get("Type") or "Service")
        if kind not in ITEM_TYPES:
            raise invalid(f"Invalid Enumeration : {kind} is not a valid Item Type", "Type")
        record["Type"] = kind
        if kind in ("Service", "NonInventory", "Inventory"):
            account_id = ref_value(record.get("IncomeAccountRef"))
            if not account_id:
                raise required("IncomeAccountRef")
            account = w.realm.get("Account", account_id)
            if account is None or not account.get("Active", True):
                raise not_found("IncomeAccountRef")
            record["IncomeAccountRef"] = {"value": account_id, "name": account["Name"]}
        price = to_decimal(record.get("UnitPrice"), "UnitPrice")
        record["UnitPrice"] = qbo_number(price) if price is not None else 0
        record["FullyQualifiedName"] = record["Name"]
        record["Taxable"] = as_bool(record.get("Taxable"), False)


class AccountSpec(NamedSpec):
    entity = "Account"
    derived = frozenset({"FullyQualifiedName", "CurrentBalance", "Classification"})

    def rules(self, w: Write, record: Record) -> None:
        if is_blank(record.get("AccountType")):
            raise required("AccountType")
        record["FullyQualifiedName"] = record["Name"]
        record.setdefault("CurrentBalance", 0)
        record.setdefault("CurrencyRef", {"value": w.realm.preferences.home_currency})


class TermSpec(NamedSpec):
    entity = "Term"
    name_max = 31

    def rules(self, w: Write, record: Record) -> None:
        days = to_decimal(record.get("DueDays"), "DueDays")
        record["DueDays"] = int(days) if days is not None else 0
        record.setdefault("Type", "STANDARD")


class TaxCodeSpec(NamedSpec):
    """Read-only through the API (QBO manages tax codes); seeds may add them."""

    entity = "TaxCode"
    read_only = True

    def rules(self, w: Write, record: Record) -> None:
        record["Taxable"] = as_bool(record.get("Taxable"), True)
        record.setdefault("TaxGroup", False)
        details = (record.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
        for detail in details:
            rate_id = ref_value(detail.get("TaxRateRef"))
            if not rate_id or w.realm.get("TaxRate", rate_id) is None:
                raise not_found("SalesTaxRateList.TaxRateDetail.TaxRateRef")


class TaxRateSpec(NamedSpec):
    """A sales-tax rate (``RateValue`` percent). Read-only through the API, as in QBO
    (rates are made through the TaxService endpoint or the UI); seeds may add them."""

    entity = "TaxRate"
    read_only = True

    def rules(self, w: Write, record: Record) -> None:
        rate = to_decimal(record.get("RateValue"), "RateValue")
        if rate is None or rate < 0:
            raise required("RateValue")
        record["RateValue"] = rate
        record.setdefault("SpecialTaxType", "NONE")
        record.setdefault("DisplayType", "ReadOnly")
