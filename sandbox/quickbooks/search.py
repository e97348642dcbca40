"""Running a parsed query against a realm: filters, order, paging, the response shape.

Name-list entities (Customer, Item, ...) return only active records unless the WHERE
clause mentions `Active` (`Active = false`, `Active IN (true, false)`), as QBO does.
String comparisons are case-insensitive (QBO's collation), and so are property names:
``Metadata.LastUpdatedTime`` is ``MetaData.LastUpdatedTime`` (production integrations
query with the first spelling, e.g. Pipedream's QuickBooks "new customer updated"
source, PipedreamHQ/pipedream#13589: ``Where Metadata.LastUpdatedTime >= …``). Fields
that QBO does not let you filter or sort on fail with 4001, so a query that works here
works there.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from billsync.sandbox.quickbooks.errors import QboFault
from billsync.sandbox.quickbooks.query import Condition, Literal, Query, decimal_or_none
from billsync.sandbox.quickbooks.store import BY_LOWER, NAME_LISTS, Realm, Record
from billsync.sandbox.quickbooks.timefmt import parse_moment

_COMMON = {"Id", "SyncToken", "MetaData.CreateTime", "MetaData.LastUpdatedTime"}
_PERSON = {"DisplayName", "GivenName", "FamilyName", "MiddleName", "CompanyName",
           "PrimaryEmailAddr", "Active", "Balance", "PrintOnCheckName"}  # fmt: skip
_ACCOUNT = {"Name", "AccountType", "AccountSubType", "Active", "FullyQualifiedName",
            "Classification", "CurrentBalance"}  # fmt: skip
_TXN = {"DocNumber", "TxnDate", "CustomerRef", "TotalAmt", "CurrencyRef"}
QUERYABLE: dict[str, set[str]] = {
    "Customer": _COMMON | _PERSON | {"FullyQualifiedName", "Job", "ParentRef", "CurrencyRef"},
    "Vendor": _COMMON | _PERSON,
    "Employee": _COMMON | _PERSON | {"EmployeeNumber"},
    "Item": _COMMON | {"Name", "Sku", "Type", "Active", "FullyQualifiedName", "UnitPrice"},
    "Account": _COMMON | _ACCOUNT,
    "Term": _COMMON | {"Name", "Active", "DueDays"},
    "TaxCode": _COMMON | {"Name", "Active", "Taxable"},
    "TaxRate": _COMMON | {"Name", "Active", "RateValue"},
    "Invoice": _COMMON | _TXN | {"DueDate", "Balance", "EmailStatus"},
    "Payment": _COMMON | _TXN - {"DocNumber"} | {"PaymentRefNum", "UnappliedAmt"},
    "CreditMemo": _COMMON | _TXN | {"Balance", "RemainingCredit"},
}


def validation_error(detail: str) -> QboFault:
    return QboFault("4001", "Invalid query", f"QueryValidationError: {detail}")


def run(realm: Realm, query: Query) -> dict[str, Any]:
    """The `QueryResponse` object for one query."""
    entity = BY_LOWER.get(query.entity.lower())
    if entity is None:
        raise validation_error(f"Entity {query.entity} is not supported by query")
    query = _canonical_names(entity, query)
    rows = [r for r in _candidates(realm, entity, query) if _keep(r, query.where)]
    if entity in NAME_LISTS and not any(c.field == "Active" for c in query.where):
        rows = [r for r in rows if r.get("Active", True)]
    if query.count:
        return {"totalCount": len(rows)}
    for field, descending in reversed(query.order):
        rows.sort(key=lambda r, f=field: _sort_key(lookup(r, f)), reverse=descending)  # type: ignore[misc]
    page = rows[query.start - 1 : query.start - 1 + query.max_results]
    if not page:
        return {}
    if query.fields is not None:
        page = [_project(r, query.fields) for r in page]
    return {entity: page, "startPosition": query.start, "maxResults": len(page)}


def _canonical_names(entity: str, query: Query) -> Query:
    """The query with every property spelled as QBO spells it (names are matched without
    case); 4001 for a property QBO does not let you filter or sort on."""
    known = {name.casefold(): name for name in QUERYABLE[entity]}

    def canonical(name: str) -> str:
        found = known.get(name.casefold())
        if found is None:
            raise validation_error(f"property '{name}' is not queryable")
        return found

    where = tuple(replace(c, field=canonical(c.field)) for c in query.where)
    order = tuple((canonical(f), descending) for f, descending in query.order)
    return replace(query, where=where, order=order)


def _candidates(realm: Realm, entity: str, query: Query) -> list[Record]:
    """Use the indexes for `Id =`, `Id IN` and `DocNumber =` instead of scanning."""
    for condition in query.where:
        if condition.field == "Id" and condition.op in ("=", "IN"):
            found = (realm.get(entity, str(v)) for v in condition.values)
            return [r for r in found if r is not None]
        if condition.field == "DocNumber" and condition.op in ("=", "IN"):
            # Every match: QBO accepts duplicate DocNumbers unless the company warns
            # about them (Preferences.warn_duplicate_doc_number), so one number can
            # name several invoices.
            ids = {i for v in condition.values for i in realm.doc_numbers.get((entity, str(v)), ())}
            found = (realm.get(entity, i) for i in sorted(ids, key=_id_order))
            return [r for r in found if r is not None]
    return realm.visible(entity)


def _id_order(record_id: str) -> tuple[int, str]:
    return (int(record_id), "") if record_id.isdigit() else (0, record_id)


def lookup(record: Record, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if isinstance(value, dict):
        # References compare by id; email addresses by address.
        return value.get("value", value.get("Address"))
    return value


def _keep(record: Record, conditions: tuple[Condition, ...]) -> bool:
    return all(_matches(record, c) for c in conditions)


def _matches(record: Record, condition: Condition) -> bool:
    value = lookup(record, condition.field)
    if value is None:
        return False
    if condition.op == "LIKE":
        pattern = "".join(".*" if ch == "%" else re.escape(ch) for ch in str(condition.values[0]))
        return re.fullmatch(pattern, str(value), re.IGNORECASE | re.DOTALL) is not None
    if condition.op == "IN":
        return any(_compare(value, v) == 0 for v in condition.values)
    order = _compare(value, condition.values[0])
    if order is None:
        return False
    return {
        "=": order == 0,
        "<": order < 0,
        ">": order > 0,
        "<=": order <= 0,
        ">=": order >= 0,
    }[condition.op]


def _compare(value: Any, literal: Literal) -> int | None:
    """-1/0/1, or None when the two cannot be compared (which matches nothing)."""
    left: Any
    right: Any
    if isinstance(value, bool):
        if isinstance(literal, str) and literal.lower() in ("true", "false"):
            literal = literal.lower() == "true"
        if not isinstance(literal, bool):
            return None
        left, right = value, literal
    elif isinstance(value, Decimal | int):
        left, right = Decimal(value), decimal_or_none(literal)
        if right is None:
            return None
    else:
        text = str(value)
        other = str(literal).lower() if isinstance(literal, bool) else str(literal)
        moment = _moment_pair(text, other)
        if moment is not None:
            left, right = moment
        elif text.isdigit() and other.isdigit():
            left, right = int(text), int(other)
        else:
            left, right = text.casefold(), other.casefold()
    return int(left > right) - int(left < right)


def _moment_pair(text: str, other: str) -> tuple[datetime, datetime] | None:
    if not (_looks_like_date(text) and _looks_like_date(other)):
        return None
    try:
        return parse_moment(text), parse_moment(other)
    except ValueError:
        return None


def _looks_like_date(text: str) -> bool:
    return len(text) >= 10 and text[4] == "-" and text[7] == "-" and text[:4].isdigit()


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (4, 0)
    if isinstance(value, bool):
        return (0, Decimal(value))
    if isinstance(value, Decimal | int):
        return (0, Decimal(value))
    text = str(value)
    if text.isdigit():
        return (0, Decimal(text))
    if _looks_like_date(text):
        try:
            return (1, parse_moment(text).timestamp())
        except ValueError:
            pass
    return (2, text.casefold())


def _project(record: Record, fields: tuple[str, ...]) -> Record:
    picked = {f: record[f] for f in fields if f in record}
    return {**picked, "domain": "QBO", "sparse": True}
