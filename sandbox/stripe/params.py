"""Typed access to parsed form parameters, with Stripe's validation errors.

Values come from the form parser (strings, dicts, lists) or from a seed file (JSON
ints and booleans too); both are accepted. Every accessor names the full parameter path
(`lines[3][quantity]`) in its error, as Stripe does.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal, InvalidOperation
from typing import Any

from billsync.sandbox.stripe.errors import invalid, missing, unknown
from billsync.sandbox.stripe.money import check_currency

MAX_DECIMAL_PLACES = 12
# The accessors are named after what they return (`params.str("email")`), which shadows
# the builtins inside the class body; annotations there use these aliases.
Text = str
Int = int
Bool = bool


class Params:
    def __init__(self, data: dict[Text, Any], prefix: Text = "") -> None:
        self.data = data
        self.prefix = prefix

    def name(self, key: Text) -> Text:
        return f"{self.prefix}[{key}]" if self.prefix else key

    def __contains__(self, key: Text) -> Bool:
        return key in self.data

    def has(self, key: Text) -> Bool:
        """Present and not the empty string (which Stripe reads as 'unset')."""
        return self.data.get(key) not in (None, "")

    def allow(self, allowed: Collection[Text]) -> None:
        for key in self.data:
            if key not in allowed:
                raise unknown(self.name(key))

    def _scalar(self, key: Text) -> Any:
        value = self.data.get(key)
        if isinstance(value, dict | list):
            raise invalid(
                self.name(key), f"Invalid string: {self.name(key)} must be a value, not a hash."
            )
        return value

    def str(self, key: Text, *, required: Bool = False, max_length: Int = 5000) -> Text | None:
        value = self._scalar(key)
        if value is None or value == "":
            if required:
                raise missing(self.name(key))
            return None
        text = value if isinstance(value, str) else str(value)
        if len(text) > max_length:
            raise invalid(
                self.name(key), f"Invalid string: must be at most {max_length} characters"
            )
        return text

    def int(
        self,
        key: Text,
        *,
        required: Bool = False,
        minimum: Int | None = None,
        maximum: Int | None = None,
    ) -> Int | None:
        value = self._scalar(key)
        if value is None or value == "":
            if required:
                raise missing(self.name(key))
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise invalid(self.name(key), f"Invalid integer: {value}", "parameter_invalid_integer")
        text = str(value).strip()
        body = text[1:] if text[:1] in "+-" else text
        if not body.isdigit() or not body.isascii():
            raise invalid(self.name(key), f"Invalid integer: {text}", "parameter_invalid_integer")
        number = int(text)
        if minimum is not None and number < minimum:
            raise invalid(
                self.name(key),
                f"This value must be greater than or equal to {minimum}.",
                "parameter_invalid_integer",
            )
        if maximum is not None and number > maximum:
            raise invalid(
                self.name(key),
                f"This value must be less than or equal to {maximum}.",
                "parameter_invalid_integer",
            )
        return number

    def bool(self, key: Text, default: Bool) -> Bool:
        value = self._scalar(key)
        if value is None or value == "":
            return default
        if isinstance(value, Bool):
            return value is True
        if value in ("true", "false"):
            return Bool(value == "true")
        raise invalid(self.name(key), f"Invalid boolean: {value}")

    def decimal(self, key: Text, *, minimum: Decimal | None = None) -> Decimal | None:
        value = self._scalar(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
            raise invalid(self.name(key), f"Invalid decimal: {value}", "parameter_invalid_decimal")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            number = Decimal("NaN")
        exponent = number.as_tuple().exponent if number.is_finite() else 0
        if not number.is_finite() or (isinstance(exponent, int) and -exponent > MAX_DECIMAL_PLACES):
            raise invalid(
                self.name(key),
                f"Invalid decimal: {value} (at most {MAX_DECIMAL_PLACES} decimal places)",
                "parameter_invalid_decimal",
            )
        if minimum is not None and number < minimum:
            raise invalid(self.name(key), f"Invalid decimal: {value} must be at least {minimum}")
        return number

    def enum(
        self, key: Text, choices: Collection[Text], default: Text | None = None
    ) -> Text | None:
        value = self.str(key)
        if value is None:
            return default
        if value not in choices:
            raise invalid(
                self.name(key),
                f"Invalid {self.name(key)}: must be one of {', '.join(sorted(choices))}",
            )
        return value

    def currency(self, key: Text, *, required: Bool = False) -> Text | None:
        value = self.str(key, required=required)
        return None if value is None else check_currency(value, self.name(key))

    def sub(self, key: Text) -> Params | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise invalid(self.name(key), f"Invalid object: {self.name(key)} must be a hash.")
        return Params(value, self.name(key))

    def items(self, key: Text, *, max_items: Int | None = None) -> list[Params] | None:
        """An array of hashes (`lines[0][...]`); None when absent, [] when set to ''."""
        raw = self.array(key, max_items=max_items)
        if raw is None:
            return None
        out = []
        for index, item in enumerate(raw):
            name = f"{self.name(key)}[{index}]"
            if not isinstance(item, dict):
                raise invalid(name, f"Invalid object: {name} must be a hash.")
            out.append(Params(item, name))
        return out

    def array(self, key: Text, *, max_items: Int | None = None) -> list[Any] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if value == "":
            return []
        if isinstance(value, dict):
            if not all(isinstance(k, str) and k.isdigit() for k in value):
                raise invalid(self.name(key), f"Invalid array: {self.name(key)}")
            value = [value[k] for k in sorted(value, key=int)]
        elif not isinstance(value, list):
            raise invalid(self.name(key), f"Invalid array: {self.name(key)}")
        if max_items is not None and len(value) > max_items:
            raise invalid(
                self.name(key),
                f"Invalid array: {self.name(key)} must have at most {max_items} elements",
            )
        return list(value)

    def strings(self, key: Text, *, max_items: Int | None = None) -> list[Text]:
        values = self.array(key, max_items=max_items) or []
        for value in values:
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise invalid(self.name(key), f"Invalid array: {self.name(key)} must hold strings")
        return [str(value) for value in values]

    def metadata(self, key: Text = "metadata") -> dict[Text, Text] | None:
        """Stripe metadata: ≤ 50 keys, key ≤ 40 chars without brackets, value ≤ 500.

        Returns None when absent; '' (clear everything) returns {}. Empty values are
        kept so that `merge_metadata` can delete those keys.
        """
        value = self.data.get(key)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid(self.name(key), "Invalid object: metadata must be a hash.")
        if len(value) > 50:
            raise invalid(self.name(key), "Metadata can have at most 50 keys.")
        out: dict[Text, Text] = {}
        for k, v in value.items():
            name = f"{self.name(key)}[{k}]"
            if len(k) > 40:
                raise invalid(name, f"Metadata keys can be at most 40 characters: {k}")
            if isinstance(v, dict | list):
                raise invalid(name, "Metadata values must be strings.")
            text = v if isinstance(v, str) else str(v)
            if len(text) > 500:
                raise invalid(name, "Metadata values can be at most 500 characters.")
            out[str(k)] = text
        return out

    def range(self, key: Text) -> dict[Text, Int] | None:
        """`created=123` or `created[gte]=123&created[lt]=456`."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, dict):
            sub = Params(value, self.name(key))
            sub.allow(("gt", "gte", "lt", "lte"))
            return {op: n for op in ("gt", "gte", "lt", "lte") if (n := sub.int(op)) is not None}
        exact = self.int(key)
        assert exact is not None
        return {"gte": exact, "lte": exact}


def in_range(value: int | None, bounds: dict[str, int] | None) -> bool:
    if not bounds:
        return True
    if value is None:
        return False
    return (
        value > bounds.get("gt", value - 1)
        and value >= bounds.get("gte", value)
        and value < bounds.get("lt", value + 1)
        and value <= bounds.get("lte", value)
    )


def merge_metadata(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    """Stripe's update semantics: '' deletes a key, `metadata=''` clears all."""
    if update is None:
        return current
    if not update:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
