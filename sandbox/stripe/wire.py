"""JSON rendering and Stripe-like ids.

Stripe sends money as integers in minor units and decimal quantities as strings
(`unit_amount_decimal: "1250.5"`), so almost every number here is an `int`. The one
non-integer number is a coupon's `percent_off` (a JSON number like 25.5), held as a
Decimal. `json.dumps` cannot emit a Decimal without going through float, so `dumps`
renders each Decimal as a sentinel string and then splices the Decimal's exact text in
as a bare number. The sentinel starts with U+0000, which request strings never carry
(the form parser refuses NUL), so no user value can be mistaken for it.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from decimal import Decimal
from typing import Any

_ALPHABET = string.ascii_letters + string.digits
_SENTINEL = "\x00dec:"
_SENTINEL_JSON = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')


def new_id(prefix: str, length: int = 24) -> str:
    """`cus_Qx7...`: Stripe ids are a type prefix and a random base62 tail."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _default(value: object) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError("non-finite Decimal in a Stripe response")
        return _SENTINEL + format(value.normalize(), "f")
    raise TypeError(f"cannot render {type(value).__name__} as Stripe JSON")


def dumps(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default)
    if "\\u0000dec:" in text:
        text = _SENTINEL_JSON.sub(r"\1", text)
    return text


def decimal_text(value: Decimal) -> str:
    """`unit_amount_decimal` and `quantity_decimal` are strings without exponent."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text
