"""The whitelist of named transforms, and Python functions registered by name.

A mapping file may only say *which* transform to apply, never *how*: there is no
expression language and nothing is evaluated. A transform is written either as a bare
name (`strip`) or as a one-key mapping with its argument (`{truncate: 21}`).

Anything harder is a Python function registered by name — in billsync itself with
`@register_function("name")`, or by a plug-in package through the
`billsync.mapping_functions` entry-point group — and called as `{function: name}`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from importlib.metadata import entry_points
from typing import Any

from billsync.core import money

TransformFn = Callable[[Any, Any], Any]
"""A transform takes the value and its argument and returns the new value."""

FUNCTION_ENTRY_POINT_GROUP = "billsync.mapping_functions"


class TransformError(ValueError):
    """A transform could not be applied to a value (reported against the deal)."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _upper(value: Any, _: Any) -> Any:
    text = _text(value)
    return None if text is None else text.upper()


def _lower(value: Any, _: Any) -> Any:
    text = _text(value)
    return None if text is None else text.lower()


def _strip(value: Any, _: Any) -> Any:
    text = _text(value)
    return None if text is None else " ".join(text.split())


def _truncate(value: Any, length: Any) -> Any:
    text = _text(value)
    return None if text is None else text[: int(length)]


def _default(value: Any, fallback: Any) -> Any:
    return fallback if value is None or value == "" else value


def _date(value: Any, fmt: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.strftime(str(fmt))
    try:
        return date.fromisoformat(str(value)).strftime(str(fmt))
    except ValueError:
        raise TransformError(f"'{value}' is not a date") from None


def _round(value: Any, places: Any) -> Any:
    if value is None:
        return None
    try:
        amount = money.parse_decimal(value)
    except (TypeError, ValueError, money.MoneyError):
        raise TransformError(f"'{value}' is not a number") from None
    try:
        return amount.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise TransformError(f"cannot round '{value}' to {places} places") from None


def _lookup(value: Any, table: Any) -> Any:
    # `table` is an inline mapping; unmatched values pass through unchanged, so a
    # lookup never hides data (validation reports what is still unknown).
    if value is None or not isinstance(table, Mapping):
        return value
    folded = {str(k).casefold(): v for k, v in table.items()}
    return folded.get(str(value).casefold(), value)


# name -> (function, takes an argument)
BUILTIN_TRANSFORMS: dict[str, tuple[TransformFn, bool]] = {
    "upper": (_upper, False),
    "lower": (_lower, False),
    "strip": (_strip, False),
    "truncate": (_truncate, True),
    "default": (_default, True),
    "date": (_date, True),
    "round": (_round, True),
    "lookup": (_lookup, True),
}


@dataclass(frozen=True)
class FunctionRegistry:
    """Python functions available to mapping files as `{function: name}`."""

    functions: Mapping[str, Callable[[Any], Any]]

    @classmethod
    def discover(cls, extra: Mapping[str, Callable[[Any], Any]] | None = None) -> FunctionRegistry:
        """Built-ins, then plug-ins from the entry-point group, then `extra` (tests)."""
        found: dict[str, Callable[[Any], Any]] = dict(BUILTIN_FUNCTIONS)
        for entry in entry_points(group=FUNCTION_ENTRY_POINT_GROUP):
            found[entry.name] = entry.load()
        found.update(extra or {})
        return cls(found)

    def get(self, name: str) -> Callable[[Any], Any] | None:
        return self.functions.get(name)


def _initials(value: Any) -> Any:
    text = _text(value)
    return None if text is None else "".join(word[0] for word in text.split() if word).upper()


BUILTIN_FUNCTIONS: dict[str, Callable[[Any], Any]] = {"initials": _initials}


def check_transform(step: Any, functions: FunctionRegistry) -> str | None:
    """Why `step` is not a valid transform, or None. Used when loading mapping files."""
    if isinstance(step, str):
        if step not in BUILTIN_TRANSFORMS:
            return f"unknown transform '{step}' (allowed: {', '.join(BUILTIN_TRANSFORMS)})"
        if BUILTIN_TRANSFORMS[step][1]:
            return f"transform '{step}' needs an argument, e.g. {{{step}: …}}"
        return None
    if isinstance(step, dict) and len(step) == 1:
        ((name, argument),) = step.items()
        if name == "function":
            if functions.get(str(argument)) is None:
                return f"no Python function registered as '{argument}'"
            return None
        if name not in BUILTIN_TRANSFORMS:
            return f"unknown transform '{name}' (allowed: {', '.join(BUILTIN_TRANSFORMS)})"
        if name in ("truncate", "round") and not (isinstance(argument, int) and argument >= 0):
            return f"transform '{name}' needs a whole number ≥ 0"
        if name == "lookup" and not isinstance(argument, dict):
            return "transform 'lookup' needs a mapping of values"
        return None
    return "a transform is a name or a one-key mapping like {truncate: 21}"


def apply_transforms(value: Any, steps: tuple[Any, ...], functions: FunctionRegistry) -> Any:
    for step in steps:
        if isinstance(step, str):
            value = BUILTIN_TRANSFORMS[step][0](value, None)
            continue
        ((name, argument),) = step.items()
        if name == "function":
            function = functions.get(str(argument))
            if function is None:
                raise TransformError(f"no Python function registered as '{argument}'")
            value = function(value)
        else:
            value = BUILTIN_TRANSFORMS[name][0](value, argument)
    return value
