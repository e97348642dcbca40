"""JSON with exact decimals: vendor payloads carry money as JSON numbers.

`loads` parses every non-integer number as `Decimal` (never float); `dumps` writes a
`Decimal` back as a JSON number with exactly its digits. The standard encoder cannot
emit a number it did not format itself, so Decimals travel as tagged strings and the
tags are removed from the encoded text afterwards.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_TAG = "\u0000dec:"
_TAGGED = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


def _tag(value: Any) -> str:
    # json.dumps calls this only for objects it cannot encode itself.
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("non-finite Decimal cannot be written as JSON")
        return _TAG + format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps` that writes Decimals as numbers, digit for digit."""
    return _TAGGED.sub(r"\1", json.dumps(value, default=_tag, **kwargs))
