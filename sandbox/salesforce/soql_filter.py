"""WHERE and ORDER BY compiled into Python closures (no eval), with SOQL's semantics.

- Text comparisons ignore case; ids compare exactly and accept the 15-character form.
- A literal must have the field's type ("value of filter criterion for field 'CloseDate'
  must be of type date and should not be enclosed in quotes").
- Null is an ordinary value: `Amount != 100` keeps rows whose Amount is null, while
  `Amount < 100` does not.
- ORDER BY: ASC puts nulls first and DESC last unless NULLS FIRST/LAST says otherwise.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from billsync.sandbox.salesforce import ids
from billsync.sandbox.salesforce.schema import TEXT_TYPES, ObjectDef, Schema
from billsync.sandbox.salesforce.soql_ast import (
    BoolOp,
    Comparison,
    Condition,
    Not,
    OrderItem,
    Value,
)
from billsync.sandbox.salesforce.soql_fields import QueryError, Tables, check_filterable, resolve
from billsync.sandbox.salesforce.soql_lexer import Wildcard

Record = dict[str, Any]
Predicate = Callable[[Record], bool]

_ORDERING = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
# The literal kind each field type takes, and the type name Salesforce's message uses.
_EXPECTED = {
    "currency": ("number", "double"),
    "double": ("number", "double"),
    "percent": ("number", "double"),
    "int": ("number", "integer"),
    "boolean": ("boolean", "boolean"),
    "date": ("date", "date"),
    "datetime": ("datetime", "dateTime"),
    "id": ("string", "id"),
    "reference": ("string", "id"),
}


def compile_condition(
    schema: Schema, definition: ObjectDef, condition: Condition, tables: Tables
) -> Predicate:
    if isinstance(condition, BoolOp):
        parts = [compile_condition(schema, definition, c, tables) for c in condition.operands]
        if condition.operator == "AND":
            return lambda record: all(part(record) for part in parts)
        return lambda record: any(part(record) for part in parts)
    if isinstance(condition, Not):
        inner = compile_condition(schema, definition, condition.operand, tables)
        return lambda record: not inner(record)
    return _comparison(schema, definition, condition, tables)


def _comparison(
    schema: Schema, definition: ObjectDef, comparison: Comparison, tables: Tables
) -> Predicate:
    resolved = resolve(schema, definition, comparison.field)
    check_filterable(resolved, comparison.field.position)
    field = resolved.field
    get = resolved.accessor(tables)
    text = field.type in TEXT_TYPES
    is_id = field.type in ("id", "reference")
    op = comparison.operator
    if op == "LIKE":
        if not (text or is_id):
            raise QueryError(
                "INVALID_FIELD",
                f"invalid operator on {field.type} field: LIKE",
                comparison.field.position,
            )
        pattern = _like_regex(comparison.values[0].value)
        return lambda record: (value := get(record)) is not None and bool(pattern.match(value))
    values = [_literal(field.name, field.type, value) for value in comparison.values]
    if op in ("IN", "NOT IN"):
        wanted = {_fold(v, text) for v in values}
        if op == "IN":
            return lambda record: _fold(get(record), text) in wanted
        return lambda record: _fold(get(record), text) not in wanted
    target = _fold(values[0], text)
    if op == "=":
        return lambda record: _fold(get(record), text) == target
    if op == "!=":
        return lambda record: _fold(get(record), text) != target
    if target is None or field.type == "boolean":
        raise QueryError(
            "INVALID_QUERY_FILTER_OPERATOR",
            f"invalid operator on {'null' if target is None else 'boolean'} value: {op}",
            comparison.values[0].position,
        )
    compare = _ORDERING[op]
    return lambda record: (value := _fold(get(record), text)) is not None and compare(value, target)


def _fold(value: Any, text: bool) -> Any:
    return value.lower() if text and isinstance(value, str) else value


def _literal(name: str, field_type: str, value: Value) -> Any:
    if value.kind == "null":
        return None
    if field_type in TEXT_TYPES:
        expected, label = "string", "string"
    else:
        expected, label = _EXPECTED[field_type]
    if value.kind != expected:
        quoting = (
            "should be enclosed in quotes"
            if expected == "string"
            else "should not be enclosed in quotes"
        )
        raise QueryError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{name}' must be of type {label} and {quoting}",
            value.position,
        )
    if field_type in ("id", "reference"):
        if value.value == "":
            return None
        if not ids.is_well_formed(value.value):
            raise QueryError(
                "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value.value}", value.position
            )
        return ids.to18(value.value)
    return value.value


def _like_regex(pieces: list[str | Wildcard]) -> re.Pattern[str]:
    parts = []
    for piece in pieces:
        if piece is Wildcard.ANY:
            parts.append(".*")
        elif piece is Wildcard.ONE:
            parts.append(".")
        else:
            parts.append(re.escape(str(piece)))
    return re.compile("".join(parts) + r"\Z", re.IGNORECASE | re.DOTALL)


def sort_rows(
    schema: Schema,
    definition: ObjectDef,
    order_by: tuple[OrderItem, ...],
    rows: list[Record],
    tables: Tables,
) -> None:
    """Sort in place, last key first, relying on the sort being stable."""
    keys = []
    for item in order_by:
        resolved = resolve(schema, definition, item.field)
        check_filterable(resolved, item.field.position, sorting=True)
        keys.append((item, resolved.accessor(tables), resolved.field.type in TEXT_TYPES))
    for item, get, text in reversed(keys):
        # Non-null values rank 1; nulls rank 0 or 2 so that, after any reversal, they
        # land first or last as asked.
        nulls_high = item.nulls_last != item.descending
        null_key = (2,) if nulls_high else (0,)

        def key(
            record: Record,
            get: Callable[[Record], Any] = get,
            text: bool = text,
            null_key: tuple[int] = null_key,
        ) -> Any:
            value = get(record)
            return null_key if value is None else (1, _fold(value, text))

        rows.sort(key=key, reverse=item.descending)
