"""Stripe's form encoding: `a[b][c]=v`, `a[0][b]=v`, `a[]=v`.

stripe-python always indexes arrays (`lines[0][quantity]=2`, `expand[0]=customer`);
hand-written clients and curl examples use `expand[]=customer`. Indexed keys are kept as
dicts with digit keys and turned into lists only where the endpoint expects an array
(`Params.items`), because `metadata[0]=x` is a metadata key "0", not an array: Stripe's
parser decides by schema, and so does ours.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

FormValue = str | list[Any] | dict[str, Any]


class FormError(ValueError):
    """The body or query string cannot be read as Stripe form parameters."""


def _split(key: str) -> list[str]:
    """`lines[0][price_data][currency]` -> ['lines', '0', 'price_data', 'currency']."""
    head, bracket, rest = key.partition("[")
    if not head:
        raise FormError(f"Invalid parameter name: {key}")
    parts = [head]
    while bracket:
        inner, close, rest = rest.partition("]")
        if not close:
            raise FormError(f"Invalid parameter name: {key}")
        parts.append(inner)
        if not rest:
            break
        if not rest.startswith("["):
            raise FormError(f"Invalid parameter name: {key}")
        rest = rest[1:]
    return parts


def _describe(parts: list[str]) -> str:
    return parts[0] + "".join(f"[{p}]" for p in parts[1:])


def _set(root: dict[str, Any], parts: list[str], value: str) -> None:
    node: Any = root
    for depth, part in enumerate(parts[:-1]):
        if part == "":
            raise FormError(f"Invalid array: {_describe(parts[: depth + 2])}")
        child = node.get(part)
        if child is None:
            child = [] if parts[depth + 1] == "" else {}
            node[part] = child
        elif isinstance(child, str) or (isinstance(child, list) != (parts[depth + 1] == "")):
            raise FormError(f"Invalid hash: {_describe(parts[: depth + 1])}")
        if isinstance(child, list):
            # `a[][b]` (an array of hashes without indexes) is ambiguous; Stripe's own
            # clients never send it, so refuse it clearly.
            if depth + 2 != len(parts):
                raise FormError(f"Invalid array: {_describe(parts)}")
            child.append(value)
            return
        node = child
    last = parts[-1]
    if last == "":
        raise FormError(f"Invalid array: {_describe(parts)}")
    existing = node.get(last)
    if isinstance(existing, dict | list):
        raise FormError(f"Invalid hash: {_describe(parts)}")
    node[last] = value  # a repeated scalar keeps the last value, as Rack does


def parse_form(text: str) -> dict[str, Any]:
    """Parse a query string or form body into nested dicts/lists of strings."""
    result: dict[str, Any] = {}
    if not text:
        return result
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError("The request body is not valid form encoding.") from exc
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            raise FormError("Parameters may not contain NUL characters.")
        _set(result, _split(key), value)
    return result
