"""Resolving SOQL field paths against the schema, with Salesforce's error messages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billsync.sandbox.salesforce.schema import FieldDef, ObjectDef, Schema
from billsync.sandbox.salesforce.soql_ast import FieldRef

Record = dict[str, Any]
Tables = dict[str, dict[str, Record]]

_FIELD_HINT = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the "
    "custom field name. Please reference your WSDL or the describe call for the "
    "appropriate names."
)
_RELATIONSHIP_HINT = (
    "If you are attempting to use a custom relationship, be sure to append the '__r' "
    "after the custom relationship name. Please reference your WSDL or the describe call "
    "for the appropriate names."
)
_OBJECT_HINT = (
    "If you are attempting to use a custom object, be sure to append the '__c' after the "
    "entity name. Please reference your WSDL or the describe call for the appropriate names."
)


class QueryError(Exception):
    """A query Salesforce would refuse; `position` is where its caret would point."""

    def __init__(self, error_code: str, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.position = position


def unknown_object(name: str, position: int) -> QueryError:
    return QueryError(
        "INVALID_TYPE", f"sObject type '{name}' is not supported. {_OBJECT_HINT}", position
    )


def unknown_child(name: str, position: int) -> QueryError:
    return QueryError(
        "INVALID_TYPE",
        f"Didn't understand relationship '{name}' in FROM part of query call. "
        + _RELATIONSHIP_HINT,
        position,
    )


@dataclass(frozen=True)
class ResolvedField:
    """A path such as Account.Owner.Name: the reference hops, then the final field."""

    hops: tuple[tuple[FieldDef, ObjectDef], ...]
    """(reference field, the object it points at) for each relationship in the path."""
    field: FieldDef
    owner: ObjectDef
    """The object that holds `field`."""

    def accessor(self, tables: Tables) -> Callable[[Record], Any]:
        name = self.field.name
        if not self.hops:
            return lambda record: record.get(name)
        steps = [(reference.name, tables[target.name]) for reference, target in self.hops]

        def get(record: Record) -> Any:
            current: Record | None = record
            for reference, table in steps:
                parent_id = current.get(reference) if current is not None else None
                current = table.get(parent_id) if parent_id is not None else None
                if current is None:
                    return None
            return current.get(name) if current is not None else None

        return get


def resolve(schema: Schema, definition: ObjectDef, ref: FieldRef) -> ResolvedField:
    path = list(ref.path)
    if (
        len(path) > 1
        and definition.parent(path[0]) is None
        and path[0].lower() == definition.name.lower()
    ):
        path = path[1:]  # `SELECT Opportunity.Name FROM Opportunity` names the object itself
    hops: list[tuple[FieldDef, ObjectDef]] = []
    current = definition
    for relationship in path[:-1]:
        reference = current.parent(relationship)
        if reference is None or reference.reference_to is None:
            raise QueryError(
                "INVALID_FIELD",
                f"Didn't understand relationship '{relationship}' in field path. "
                + _RELATIONSHIP_HINT,
                ref.position,
            )
        target = schema.get(reference.reference_to)
        hops.append((reference, target))
        current = target
    field = current.field(path[-1])
    if field is None:
        raise QueryError(
            "INVALID_FIELD",
            f"No such column '{path[-1]}' on entity '{current.name}'. {_FIELD_HINT}",
            ref.position,
        )
    return ResolvedField(tuple(hops), field, current)


def check_filterable(resolved: ResolvedField, position: int, *, sorting: bool = False) -> None:
    """Long text areas can be neither filtered nor sorted in SOQL."""
    field = resolved.field
    if field.type == "textarea" and field.length > 255:
        verb = "sorted" if sorting else "filtered"
        raise QueryError(
            "INVALID_FIELD", f"field '{field.name}' can not be {verb} in a query call", position
        )
