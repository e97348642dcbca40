"""The parsed form of a SOQL query (what `soql_parser` builds and `soql_eval` runs).

Every node keeps the character position Salesforce would point at in an error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

LiteralKind = Literal["string", "number", "boolean", "null", "date", "datetime", "like"]
Operator = Literal["=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "LIKE"]


@dataclass(frozen=True)
class FieldRef:
    path: tuple[str, ...]
    position: int

    @property
    def text(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Value:
    kind: LiteralKind
    value: Any
    """str, Decimal, bool, None, date, aware datetime; for LIKE a list of literal text
    pieces and `Wildcard`s."""
    position: int


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    operator: Operator
    values: tuple[Value, ...]
    """One value, or the list of IN / NOT IN."""


@dataclass(frozen=True)
class BoolOp:
    operator: Literal["AND", "OR"]
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    operand: Condition


Condition = Comparison | BoolOp | Not


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Query:
    fields: tuple[FieldRef, ...]
    subqueries: tuple[Query, ...]
    source: str
    """The object (top level) or the child relationship name (subquery)."""
    source_position: int
    where: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    count_only: bool = False
    select_order: tuple[FieldRef | Query, ...] = ()
    """Fields and subqueries in the order written (the JSON keys follow it)."""
