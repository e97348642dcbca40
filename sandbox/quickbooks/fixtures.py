"""What a new QBO sandbox company already holds, and loading seed-file records.

Seeding goes through the same rules as the API (so derived fields and indexes are
right) without auth, SyncToken checks or webhooks. A seed record that names an
existing record (same Id, or same Name / DisplayName) updates it instead of
failing, so a seed may restate the built-in terms and accounts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billsync.sandbox.quickbooks.errors import QboFault
from billsync.sandbox.quickbooks.operations import Operations
from billsync.sandbox.quickbooks.spec import Write
from billsync.sandbox.quickbooks.store import PEOPLE, Realm, Record

SEED_ORDER = (
    "Account",
    "Term",
    "TaxRate",
    "TaxCode",
    "Item",
    "Customer",
    "Vendor",
    "Employee",
    "Invoice",
    "CreditMemo",
    "Payment",
)

BUILT_IN: dict[str, list[Record]] = {
    "Account": [
        {"Id": "1", "Name": "Services", "AccountType": "Income",
         "AccountSubType": "ServiceFeeIncome", "Classification": "Revenue"},
        {"Id": "79", "Name": "Sales of Product Income", "AccountType": "Income",
         "AccountSubType": "SalesOfProductIncome", "Classification": "Revenue"},
        {"Id": "86", "Name": "Discounts given", "AccountType": "Income",
         "AccountSubType": "DiscountsRefundsGiven", "Classification": "Revenue"},
        {"Id": "84", "Name": "Accounts Receivable (A/R)", "AccountType": "Accounts Receivable",
         "AccountSubType": "AccountsReceivable", "Classification": "Asset"},
        {"Id": "4", "Name": "Undeposited Funds", "AccountType": "Other Current Asset",
         "AccountSubType": "UndepositedFunds", "Classification": "Asset"},
    ],
    "Term": [
        {"Id": "1", "Name": "Due on receipt", "DueDays": 0},
        {"Id": "2", "Name": "Net 10", "DueDays": 10},
        {"Id": "3", "Name": "Net 15", "DueDays": 15},
        {"Id": "4", "Name": "Net 30", "DueDays": 30},
        {"Id": "5", "Name": "Net 60", "DueDays": 60},
    ],
    # US companies mark lines with the pseudo tax codes TAX and NON; the rate comes from
    # the transaction's TxnTaxDetail.TxnTaxCodeRef (a code with a rate list), or from a
    # rate-bearing code put on the line itself (how non-US companies work).
    "TaxRate": [
        {"Id": "1", "Name": "Sandbox sales tax", "RateValue": "8.25", "AgencyRef": {"value": "1"}},
    ],
    "TaxCode": [
        {"Id": "TAX", "Name": "TAX", "Description": "TAX", "Taxable": True},
        {"Id": "NON", "Name": "NON", "Description": "NON", "Taxable": False},
        {"Id": "3", "Name": "Sales Tax 8.25%", "Description": "Sandbox sales tax",
         "Taxable": True,
         "SalesTaxRateList": {"TaxRateDetail": [
             {"TaxRateRef": {"value": "1", "name": "Sandbox sales tax"},
              "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": 0}]}},
    ],
    "Item": [
        {"Id": "1", "Name": "Services", "Type": "Service", "IncomeAccountRef": {"value": "1"}},
        {"Id": "2", "Name": "Hours", "Type": "Service", "IncomeAccountRef": {"value": "1"}},
    ],
}  # fmt: skip


def seed_realm(ops: Operations, realm: Realm, now: datetime, data: dict[str, Any]) -> None:
    """Add (or update) records given in QBO's JSON shape; ValueError names a bad one."""
    unknown = set(data) - set(SEED_ORDER) - {"preferences"}
    if unknown:
        raise ValueError(f"unknown quickbooks seed keys: {sorted(unknown)}")
    preferences = data.get("preferences") or {}
    for key, value in preferences.items():
        if not hasattr(realm.preferences, key):
            raise ValueError(f"unknown quickbooks preference {key!r}")
        setattr(realm.preferences, key, value)
    w = Write(realm, now, seeding=True)
    for entity in SEED_ORDER:
        for index, record in enumerate(data.get(entity) or []):
            if not isinstance(record, dict):
                raise ValueError(f"quickbooks seed {entity}[{index}] is not an object")
            try:
                existing = _existing(realm, entity, record)
                if existing is None:
                    ops.create(w, entity, record)
                else:
                    ops.update(w, entity, {**record, "Id": existing, "sparse": True})
            except QboFault as fault:
                raise ValueError(
                    f"quickbooks seed {entity}[{index}]: {fault.code} {fault.message}: "
                    f"{fault.detail}"
                ) from None
    realm.events.clear()  # seeding is not a change anyone is notified of


def _existing(realm: Realm, entity: str, record: Record) -> str | None:
    record_id = record.get("Id")
    if record_id is not None and str(record_id) in realm.records[entity]:
        return str(record_id)
    if entity in PEOPLE:
        owner = realm.display_names.get(str(record.get("DisplayName") or "").casefold())
        return owner[1] if owner and owner[0] == entity else None
    name = str(record.get("Name") or "").strip().casefold()
    return realm.unique_names.get((entity, name)) if name else None
