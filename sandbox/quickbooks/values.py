"""Reading loosely typed request values the way QBO does, and writing them back.

python-quickbooks serialises Decimal as a JSON *string* ("100.00") and fills unset
fields with "" or 0, so inputs arrive as numbers, numeric strings or empty strings.
Everything money is Decimal here; QBO writes amounts as JSON numbers with at least one
decimal (100.0, 125.5), which `qbo_number` reproduces.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from billsync.sandbox.quickbooks.errors import invalid

CENT = Decimal("0.01")


def is_blank(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []


def to_decimal(value: Any, element: str) -> Decimal | None:
    """None for blank; a fault for anything that is not a number."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        raise invalid(f"Invalid number for {element}: {value}", element)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise invalid(f"Invalid number for {element}: {value!r}", element) from None
    else:
        raise invalid(f"Invalid number for {element}: {value!r}", element)
    if not number.is_finite():
        raise invalid(f"Invalid number for {element}: {value!r}", element)
    return number


def money(value: Decimal) -> Decimal:
    """Round to cents, half up, as QBO stores amounts."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def qbo_number(value: Decimal) -> Decimal:
    """100.00 -> 100.0, 125.50 -> 125.5, 0.125 -> 0.125 (the vendor's rendering)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal("0.0"))
    return value.normalize()


def ref_value(value: Any) -> str:
    """The id inside a `{"value": "12", "name": ...}` reference ('' when absent)."""
    if isinstance(value, dict):
        inner = value.get("value")
        return "" if inner is None else str(inner)
    return ""


def as_bool(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return default
