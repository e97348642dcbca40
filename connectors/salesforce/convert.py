"""Salesforce query records -> canonical `Deal`s, or a precise reason why not.

A record that cannot be represented (no Account, a date that is not a date, a discount
of 120 %) must not stop the pull: `to_deal` raises `RecordProblem` naming the Salesforce
field, and the puller turns it into a `DealRejected` that the engine records as a
needs-attention failure. Inconsistencies that a `Deal` *can* carry (amount ≠ sum of the
lines, a product without a code) are left to the validator, which reports them better.

Wire formats (as the REST API writes them): dates ``2026-11-01``; datetimes
``2026-11-01T12:00:00.000+0000`` (always UTC); numbers arrive as Decimal because the
transport decodes JSON with ``parse_float=Decimal`` (see session.py), or as int.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from billsync.connectors.salesforce.fields import (
    CURRENCY_FIELD,
    LINE_RELATIONSHIP,
    DealFieldPaths,
    lookup,
)
from billsync.core import money
from billsync.core.canonical import Account, Address, Contact, Deal, DealLine

__all__ = ["DealRejected", "RecordProblem", "parse_datetime", "to_deal"]


@dataclass(frozen=True, slots=True)
class DealRejected:
    """A closed-won deal that could not be read into a `Deal`.

    ``field`` is the Salesforce field path at fault (``Account``,
    ``OpportunityLineItems[2].UnitPrice``), ``reason`` says what is wrong and how to fix
    it, ``revision`` is the deal's SystemModstamp when it could be read (so the failure
    is retried when the deal changes).
    """

    deal_id: str
    field: str
    reason: str
    revision: datetime | None
    deal_name: str | None = None  # shown by `billsync failures list` when readable


class RecordProblem(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def parse_datetime(value: object, field: str) -> datetime:
    """A Salesforce datetime (``2026-11-01T12:00:00.000+0000``) as an aware datetime."""
    if not isinstance(value, str):
        raise RecordProblem(field, f"expected a datetime, got {_shown(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RecordProblem(field, f"{value!r} is not a datetime") from None
    if parsed.utcoffset() is None:
        raise RecordProblem(field, f"{value!r} has no time zone")
    return parsed


def to_deal(
    record: Mapping[str, Any],
    lines: Sequence[object],
    *,
    paths: DealFieldPaths,
    multi_currency: bool,
    company_currency: str,
) -> Deal:
    """Build the Deal, or raise RecordProblem for the first field that cannot be used."""
    revision = parse_datetime(record.get("SystemModstamp"), "SystemModstamp")
    currency = company_currency
    if multi_currency and record.get(CURRENCY_FIELD) is not None:
        currency = _currency(record.get(CURRENCY_FIELD))
    deal_lines = tuple(_line(line, index) for index, line in enumerate(lines))
    amount = record.get("Amount")
    if amount is None:
        raise RecordProblem(
            "Amount",
            "is empty; give the deal an amount or products"
            if not deal_lines
            else "is empty although the deal has products; check field access to Amount",
        )
    contact_name = _text(record, paths.contact_name)
    contact_email = _text(record, paths.contact_email)
    fields: dict[str, Any] = {
        "id": _required_text(record, "Id"),
        "account": _account(record, paths),
        "name": _text(record, "Name") or "",
        "close_date": _date(record.get("CloseDate"), "CloseDate", required=True),
        "currency": currency,
        "amount": _decimal(amount, "Amount"),
        "lines": deal_lines,
        "terms": _text(record, paths.terms),
        "po_number": _text(record, paths.po_number),
        "billing_contact": _contact(contact_name, contact_email, paths),
        "revision": revision,
        "target_hint": _text(record, paths.target_hint),
    }
    try:
        return Deal(**fields)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        raise RecordProblem(_source_field(error["loc"], paths), error["msg"]) from None


def _account(record: Mapping[str, Any], paths: DealFieldPaths) -> Account:
    account = record.get("Account")
    if not isinstance(account, Mapping) or not account.get("Id"):
        raise RecordProblem(
            "Account", "the deal has no account (or the integration user cannot see it); set one"
        )
    name = _text(account, "Name")
    if not name:
        raise RecordProblem("Account.Name", "the account has no name")
    street = _text(account, "BillingStreet")
    line1, _, rest = (street or "").partition("\n")
    address = Address(
        line1=line1.strip() or None,
        line2=", ".join(part.strip() for part in rest.splitlines() if part.strip()) or None,
        city=_text(account, "BillingCity"),
        region=_text(account, "BillingState"),
        postal_code=_text(account, "BillingPostalCode"),
        country=_text(account, "BillingCountry"),
    )
    return _build_account(record, account, address, paths)


def _build_account(
    record: Mapping[str, Any],
    account: Mapping[str, Any],
    address: Address,
    paths: DealFieldPaths,
) -> Account:
    try:
        return Account(
            id=str(account["Id"]),
            name=str(account["Name"]).strip(),
            number=_text(record, paths.account_number),
            billing_address=address if address.model_dump(exclude_none=True) else None,
            billing_email=_text(record, paths.billing_email),
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        field = {"billing_email": paths.billing_email, "number": paths.account_number}.get(
            str(error["loc"][0])
        )
        raise RecordProblem(field or "Account", error["msg"]) from None


def _contact(name: str | None, email: str | None, paths: DealFieldPaths) -> Contact | None:
    if not name and not email:
        return None
    try:
        return Contact(name=name, email=email)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        field = paths.contact_email if error["loc"][:1] == ("email",) else paths.contact_name
        raise RecordProblem(field or "billing contact", error["msg"]) from None


def _line(line: object, index: int) -> DealLine:
    where = f"{LINE_RELATIONSHIP}[{index}]"
    if not isinstance(line, Mapping):
        raise RecordProblem(where, f"expected a line item record, got {_shown(line)}")
    quantity = line.get("Quantity")
    unit_price = line.get("UnitPrice")
    if quantity is None:
        raise RecordProblem(f"{where}.Quantity", "is empty")
    if unit_price is None:
        raise RecordProblem(f"{where}.UnitPrice", "is empty; give the product a sales price")
    discount = line.get("Discount")
    discount_percent = None if discount is None else _decimal(discount, f"{where}.Discount")
    if discount_percent is not None and not Decimal(0) <= discount_percent <= Decimal(100):
        raise RecordProblem(f"{where}.Discount", f"{discount_percent} % is outside 0–100 %")
    line_id = line.get("Id")
    if not isinstance(line_id, str) or not line_id:
        raise RecordProblem(f"{where}.Id", "is missing")
    return DealLine(
        id=line_id,
        product_code=_text(line, "ProductCode"),
        description=_text(line, "Description") or _text(line, "Name"),
        quantity=_decimal(quantity, f"{where}.Quantity"),
        unit_price=_decimal(unit_price, f"{where}.UnitPrice"),
        discount_percent=discount_percent,
        service_date=_date(line.get("ServiceDate"), f"{where}.ServiceDate"),
    )


def _text(record: Mapping[str, Any], path: str | None) -> str | None:
    """A text value at ``path`` (numbers rendered exactly); None when empty or unmapped."""
    if path is None:
        return None
    value = lookup(record, path)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return value.strip() or None
    raise RecordProblem(path, f"expected text, got {_shown(value)}")


def _required_text(record: Mapping[str, Any], path: str) -> str:
    value = _text(record, path)
    if value is None:
        raise RecordProblem(path, "is empty")
    return value


def _decimal(value: object, field: str) -> Decimal:
    try:
        return money.parse_decimal(value)
    except (TypeError, money.MoneyError):
        raise RecordProblem(field, f"{_shown(value)} is not an exact number") from None


def _date(value: object, field: str, *, required: bool = False) -> date | None:
    if value is None and not required:
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise RecordProblem(field, f"expected a date (YYYY-MM-DD), got {_shown(value)}")


def _currency(value: object) -> str:
    try:
        return money.normalise_currency(value)
    except money.UnknownCurrencyError as exc:
        raise RecordProblem(CURRENCY_FIELD, str(exc)) from None


def _source_field(loc: tuple[int | str, ...], paths: DealFieldPaths) -> str:
    """The Salesforce field behind a canonical validation error location."""
    head = str(loc[0]) if loc else ""
    if head == "lines" and len(loc) > 1:
        return f"{LINE_RELATIONSHIP}[{loc[1]}]"
    if head == "billing_contact" and len(loc) > 1:
        return (paths.contact_email if loc[1] == "email" else paths.contact_name) or head
    known = {
        "currency": CURRENCY_FIELD,
        "amount": "Amount",
        "name": "Name",
        "terms": paths.terms,
        "po_number": paths.po_number,
        "target_hint": paths.target_hint,
    }
    return known.get(head) or ".".join(map(str, loc)) or "Opportunity"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
