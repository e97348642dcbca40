"""One QuickBooks company (realm): its records, the indexes QBO's rules need, and the
per-request bookkeeping (batch visibility, pending notifications, requestid replays).

Everything runs on the sandbox's single event loop, so nothing here is locked.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

NAME_LISTS = ("Customer", "Vendor", "Employee", "Item", "Account", "Term", "TaxRate", "TaxCode")
TRANSACTIONS = ("Invoice", "Payment", "CreditMemo")
ENTITIES = (*NAME_LISTS, *TRANSACTIONS)
BY_LOWER = {name.lower(): name for name in ENTITIES}
PEOPLE = ("Customer", "Vendor", "Employee")
"""DisplayName is unique across these three (6240 Duplicate Name Exists)."""
NOTIFIED = frozenset({"Customer", "Invoice", "Payment", "CreditMemo", "Item"})
REQUEST_IDS_KEPT = 100_000

Record = dict[str, Any]


@dataclass
class Preferences:
    multicurrency: bool = True
    home_currency: str = "USD"
    warn_duplicate_doc_number: bool = True
    company_name: str = "Sandbox Company_US_1"

    def describe(self) -> dict[str, Any]:
        return {
            "multicurrency": self.multicurrency,
            "home_currency": self.home_currency,
            "warn_duplicate_doc_number": self.warn_duplicate_doc_number,
            "company_name": self.company_name,
        }


@dataclass
class ChangeEvent:
    entity: str
    id: str
    operation: str  # Create | Update | Delete | Void | Emailed
    at: datetime


@dataclass
class StoredResponse:
    status: int
    body: bytes
    media_type: str


@dataclass
class Realm:
    realm_id: str
    preferences: Preferences = field(default_factory=Preferences)
    records: dict[str, dict[str, Record]] = field(
        default_factory=lambda: {name: {} for name in ENTITIES}
    )
    deleted: dict[str, dict[str, Record]] = field(
        default_factory=lambda: {name: {} for name in ENTITIES}
    )
    display_names: dict[str, tuple[str, str]] = field(default_factory=dict)
    """casefolded DisplayName -> (entity, id) for Customer, Vendor and Employee."""
    unique_names: dict[tuple[str, str], str] = field(default_factory=dict)
    """(entity, casefolded Name) -> id for Item, Account and Term."""
    doc_numbers: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    """(Invoice|CreditMemo, DocNumber) -> ids: several when duplicates are allowed."""
    doc_counter: dict[str, int] = field(default_factory=dict)
    applied: dict[tuple[str, str], dict[str, Decimal]] = field(default_factory=dict)
    """(Invoice|CreditMemo, id) -> {payment id: amount applied}."""
    invoices_by_customer: dict[str, set[str]] = field(default_factory=dict)
    open_invoices: dict[str, tuple[str, Decimal]] = field(default_factory=dict)
    """invoice id -> (customer id, open balance), so customer balances move by deltas."""
    customer_open: dict[str, Decimal] = field(default_factory=dict)
    hidden: set[tuple[str, str]] = field(default_factory=set)
    """Created earlier in the batch that is running: invisible to later items."""
    events: list[ChangeEvent] = field(default_factory=list)
    request_ids: OrderedDict[str, StoredResponse] = field(default_factory=OrderedDict)
    _next_name_id: dict[str, int] = field(default_factory=dict)
    _next_txn_id: int = 1

    def new_id(self, entity: str) -> str:
        # Transactions share one id sequence, as in QBO; each name list has its own.
        if entity in TRANSACTIONS:
            value = self._next_txn_id
            self._next_txn_id += 1
        else:
            value = self._next_name_id.get(entity, 1)
            self._next_name_id[entity] = value + 1
        return str(value)

    def claim_id(self, entity: str, record_id: str) -> None:
        """Keep the sequences above an id given by a seed."""
        if not record_id.isdigit():
            return
        value = int(record_id) + 1
        if entity in TRANSACTIONS:
            self._next_txn_id = max(self._next_txn_id, value)
        else:
            self._next_name_id[entity] = max(self._next_name_id.get(entity, 1), value)

    def get(self, entity: str, record_id: str) -> Record | None:
        """A record as later requests see it (not one created earlier in this batch)."""
        if (entity, record_id) in self.hidden:
            return None
        return self.records[entity].get(record_id)

    def visible(self, entity: str) -> list[Record]:
        if not self.hidden:
            return list(self.records[entity].values())
        return [r for r in self.records[entity].values() if (entity, r["Id"]) not in self.hidden]

    def emit(self, entity: str, record_id: str, operation: str, at: datetime) -> None:
        if entity in NOTIFIED:
            self.events.append(ChangeEvent(entity, record_id, operation, at))

    def remember(self, request_id: str, response: StoredResponse) -> None:
        self.request_ids[request_id] = response
        self.request_ids.move_to_end(request_id)
        while len(self.request_ids) > REQUEST_IDS_KEPT:
            self.request_ids.popitem(last=False)

    def recall(self, request_id: str) -> StoredResponse | None:
        stored = self.request_ids.get(request_id)
        if stored is not None:
            self.request_ids.move_to_end(request_id)
        return stored
