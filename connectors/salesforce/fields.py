"""Which Salesforce fields feed the canonical deal, and which ones receive the write-back.

Standard fields (ids, names, amounts, dates, the line fields) are fixed here; the rest
is configuration: the mapping layer builds a `DealFieldPaths` from the `source:` section
of the mapping files and a `WriteBackFields` from its `writeback:` section. Only these
paths and the standard fields go into the SELECT, so a mapping that names a field the org
does not have fails the first query with INVALID_FIELD naming that field.

Paths are SOQL field paths relative to the Opportunity (`Billing_Platform__c`,
`Account.Billing_Email__c`, `Bill_To_Contact__r.Email`); they are validated here, at
start-up, so nothing but identifiers and dots can ever reach a query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "ACCOUNT_FIELDS",
    "LINE_FIELDS",
    "LINE_RELATIONSHIP",
    "OPPORTUNITY_FIELDS",
    "DealFieldPaths",
    "WriteBackFields",
    "lookup",
    "unique_paths",
]

# A SOQL identifier: letters, digits and underscores, starting with a letter. Custom
# fields and relationships end in __c / __r, namespaced ones look like ns__Field__c.
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")
# SOQL allows five levels of child-to-parent relationships.
_MAX_DEPTH = 6

OPPORTUNITY_FIELDS = (
    "Id",
    "Name",
    "AccountId",
    "CloseDate",
    "Amount",
    "SystemModstamp",
    "IsWon",
    "StageName",
)
CURRENCY_FIELD = "CurrencyIsoCode"
ACCOUNT_FIELDS = (
    "Account.Id",
    "Account.Name",
    "Account.BillingStreet",
    "Account.BillingCity",
    "Account.BillingState",
    "Account.BillingPostalCode",
    "Account.BillingCountry",
)
LINE_RELATIONSHIP = "OpportunityLineItems"
# The line's own Name is the product name copied by the platform; selecting it avoids a
# join to Product2 in every row.
LINE_FIELDS = (
    "Id",
    "Product2Id",
    "ProductCode",
    "Name",
    "Description",
    "Quantity",
    "UnitPrice",
    "Discount",
    "ServiceDate",
    "SortOrder",
    "TotalPrice",
)


def check_path(path: str, *, what: str, dotted: bool = True) -> str:
    """Return ``path`` if it is a plain SOQL field path, else raise ValueError naming ``what``."""
    if not isinstance(path, str):
        raise ValueError(f"{what}: expected a Salesforce field path, got {type(path).__name__}")
    parts = path.split(".")
    if not dotted and len(parts) > 1:
        raise ValueError(f"{what}: {path!r} must be a field of the Opportunity itself, no dots")
    if len(parts) > _MAX_DEPTH or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise ValueError(
            f"{what}: {path!r} is not a Salesforce field path "
            "(identifiers joined by dots, e.g. Account.Billing_Email__c)"
        )
    return path


@dataclass(frozen=True, slots=True)
class DealFieldPaths:
    """Salesforce field paths (relative to Opportunity) for the non-standard deal attributes.

    ``None`` means "not used": the attribute stays empty and nothing is selected for it.
    """

    target_hint: str | None = "Billing_Platform__c"
    po_number: str | None = None
    terms: str | None = None
    billing_email: str | None = "Account.Billing_Email__c"
    account_number: str | None = "Account.AccountNumber"
    contact_name: str | None = None
    contact_email: str | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None:
                check_path(value, what=f"source.{item.name}")

    def configured(self) -> dict[str, str]:
        """Canonical attribute -> Salesforce path, for the attributes in use."""
        return {
            item.name: getattr(self, item.name)
            for item in fields(self)
            if getattr(self, item.name) is not None
        }


@dataclass(frozen=True, slots=True)
class WriteBackFields:
    """Opportunity fields receiving the money state; ``None`` leaves that value unwritten."""

    invoice_id: str | None = "Billing_Invoice_Id__c"
    invoice_number: str | None = "Billing_Invoice_Number__c"
    invoice_url: str | None = "Billing_Invoice_URL__c"
    status: str | None = "Billing_Status__c"
    amount_paid: str | None = "Billing_Amount_Paid__c"
    balance_due: str | None = "Billing_Balance_Due__c"
    last_payment_date: str | None = "Billing_Last_Payment_Date__c"
    amount_refunded: str | None = "Billing_Amount_Refunded__c"
    amount_credited: str | None = "Billing_Amount_Credited__c"
    tax: str | None = "Billing_Tax__c"
    total: str | None = "Billing_Total__c"
    due_date: str | None = "Billing_Due_Date__c"
    sync_error: str | None = "Billing_Sync_Error__c"
    synced_at: str | None = "Billing_Synced_At__c"

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None:
                continue
            check_path(value, what=f"writeback.{item.name}", dotted=False)
            other = seen.setdefault(value.lower(), item.name)
            if other != item.name:
                raise ValueError(
                    f"writeback.{item.name}: {value} is already used for writeback.{other}"
                )


def unique_paths(paths: Iterable[str]) -> list[str]:
    """Paths in order, without case-insensitive duplicates (SOQL rejects a field twice)."""
    seen: set[str] = set()
    result = []
    for path in paths:
        key = path.lower()
        if key not in seen:
            seen.add(key)
            result.append(path)
    return result


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` in a query record; None when any relationship on the way is empty.

    Salesforce answers with the canonical spelling of each name, which may differ in case
    from the configured path, so each step falls back to a case-insensitive match.
    """
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        if part in value:
            value = value[part]
            continue
        lowered = part.lower()
        value = next((v for k, v in value.items() if k.lower() == lowered), None)
    return value
