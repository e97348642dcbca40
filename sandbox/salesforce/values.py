"""Field values: from request JSON into the store, and from the store onto the wire.

The store keeps Python values (str, bool, Decimal, int, date, aware datetime). On the
wire Salesforce writes numbers as JSON numbers with a trailing `.0` when integral
(`100.0`, `125.5`), dates as `YYYY-MM-DD` and datetimes as `2026-11-01T12:00:00.000+0000`
(always UTC, always milliseconds).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from billsync.sandbox.salesforce import ids
from billsync.sandbox.salesforce.errors import WriteError
from billsync.sandbox.salesforce.schema import NUMERIC_TYPES, TEXT_TYPES, FieldDef


def format_datetime(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def truncate_ms(value: datetime) -> datetime:
    """Salesforce keeps datetimes to the millisecond."""
    return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)


def parse_datetime(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # the API reads a zone-less value as GMT
    return truncate_ms(parsed)


def parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10]) if len(text) >= 10 else None
    except ValueError:
        return None


def wire_number(value: Decimal) -> Decimal:
    """The Decimal whose plain digits are what Salesforce prints: 100.0, 125.5, 0.0."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0")
        if text.endswith("."):
            text += "0"
    else:
        text += ".0"
    return Decimal("0.0") if Decimal(text) == 0 else Decimal(text)


def render(definition: FieldDef, value: Any) -> Any:
    """A stored value as Salesforce writes it in JSON (Decimals stay exact)."""
    if value is None:
        return None
    kind = definition.type
    if kind in NUMERIC_TYPES:
        return wire_number(value)
    if kind == "datetime":
        return format_datetime(value)
    if kind == "date":
        return value.isoformat()
    return value


def _type_error(definition: FieldDef, value: Any) -> WriteError:
    return WriteError(
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        f"{definition.label}: value not of required type: {value}",
        [definition.name],
    )


def _decimal(definition: FieldDef, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _type_error(definition, value)
    try:
        number = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise _type_error(definition, value) from None
    if not number.is_finite():
        raise _type_error(definition, value)
    # Salesforce rounds to the field's scale on save.
    return number.quantize(Decimal(1).scaleb(-definition.scale), rounding=ROUND_HALF_UP)


def _text(definition: FieldDef, value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | Decimal | str):
        text = str(value)
    else:
        raise _type_error(definition, value)
    if definition.length and len(text) > definition.length:
        raise WriteError(
            "STRING_TOO_LONG",
            f"{definition.label}: data value too large: {text[:40]} "
            f"(max length={definition.length})",
            [definition.name],
        )
    if definition.type == "email" and text and ("@" not in text or " " in text):
        raise WriteError(
            "INVALID_EMAIL_ADDRESS",
            f"{definition.label}: invalid email address: {text}",
            [definition.name],
        )
    return text


def coerce(definition: FieldDef, value: Any) -> Any:
    """A request value as the store keeps it, or the WriteError the API would give."""
    kind = definition.type
    if value is None or (value == "" and kind not in TEXT_TYPES):
        return False if kind == "boolean" else None
    if kind in TEXT_TYPES:
        return _text(definition, value)
    if kind in NUMERIC_TYPES:
        return _decimal(definition, value)
    if kind == "int":
        number = _decimal(definition, value)
        if number != number.to_integral_value():
            raise _type_error(definition, value)
        return int(number)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _type_error(definition, value)
    if kind == "date":
        parsed_date = parse_date(value) if isinstance(value, str) else None
        if parsed_date is None:
            raise _type_error(definition, value)
        return parsed_date
    if kind == "datetime":
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise _type_error(definition, value)
        return parsed
    # id / reference
    if not isinstance(value, str) or not ids.is_well_formed(value):
        raise WriteError(
            "MALFORMED_ID",
            f"{definition.label}: id value of incorrect type: {value}",
            [definition.name],
        )
    return ids.to18(value)
