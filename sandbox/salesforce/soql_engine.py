"""Planning and running a parsed SOQL query over the store, and shaping its rows.

The top-level rows are found once per query (filter, sort, OFFSET, LIMIT) and kept by
the cursor; child subqueries run per parent while a page is being built, because child
rows count toward the page size.

Row shape, as Salesforce writes it: `attributes` first, then the selected fields in
SELECT order; all fields of one parent relationship share one nested object (`null`
when the reference is empty); a child subquery is `{totalSize, done, records}` or
`null` when the parent has no matching children.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from billsync.sandbox.salesforce.render import attributes
from billsync.sandbox.salesforce.schema import ChildRelationship, FieldDef, ObjectDef, Schema
from billsync.sandbox.salesforce.soql_ast import FieldRef, OrderItem, Query
from billsync.sandbox.salesforce.soql_fields import (
    QueryError,
    Tables,
    resolve,
    unknown_child,
    unknown_object,
)
from billsync.sandbox.salesforce.soql_filter import Predicate, compile_condition, sort_rows
from billsync.sandbox.salesforce.values import render

Record = dict[str, Any]
MAX_OFFSET = 2000


@dataclass
class Projection:
    definition: ObjectDef
    fields: dict[str, FieldDef] = field(default_factory=dict)
    parents: dict[str, tuple[FieldDef, Projection]] = field(default_factory=dict)
    children: dict[str, ChildPlan] = field(default_factory=dict)
    order: list[tuple[str, str]] = field(default_factory=list)
    """(kind, key) in output order; kind is 'field', 'parent' or 'child'."""


@dataclass
class ChildPlan:
    relationship: ChildRelationship
    definition: ObjectDef
    predicate: Predicate | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    projection: Projection


@dataclass
class Plan:
    definition: ObjectDef
    predicate: Predicate | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int
    count_only: bool
    projection: Projection


def plan(schema: Schema, query: Query, tables: Tables) -> Plan:
    definition = schema.object(query.source)
    if definition is None:
        raise unknown_object(query.source, query.source_position)
    if query.offset is not None and query.offset > MAX_OFFSET:
        raise QueryError(
            "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
        )
    projection = Projection(definition)
    for item in query.select_order:
        if isinstance(item, FieldRef):
            _add_field(schema, projection, item, item.path)
        else:
            child = _child_plan(schema, definition, item, tables)
            key = child.relationship.name
            if key in projection.children:
                raise QueryError(
                    "MALFORMED_QUERY", f"duplicate field selected: {key}", item.source_position
                )
            projection.children[key] = child
            projection.order.append(("child", key))
    predicate = compile_condition(schema, definition, query.where, tables) if query.where else None
    sort_rows(schema, definition, query.order_by, [], tables)  # validates ORDER BY fields now
    return Plan(
        definition,
        predicate,
        query.order_by,
        query.limit,
        query.offset or 0,
        query.count_only,
        projection,
    )


def _child_plan(schema: Schema, parent: ObjectDef, query: Query, tables: Tables) -> ChildPlan:
    relationship = parent.child(query.source)
    if relationship is None:
        raise unknown_child(query.source, query.source_position)
    definition = schema.get(relationship.child)
    projection = Projection(definition)
    for ref in query.fields:
        _add_field(schema, projection, ref, ref.path)
    predicate = compile_condition(schema, definition, query.where, tables) if query.where else None
    sort_rows(schema, definition, query.order_by, [], tables)
    return ChildPlan(relationship, definition, predicate, query.order_by, query.limit, projection)


def _add_field(
    schema: Schema, projection: Projection, ref: FieldRef, path: tuple[str, ...]
) -> None:
    definition = projection.definition
    if len(path) == 1:
        resolved = resolve(schema, definition, FieldRef(path, ref.position))
        name = resolved.field.name
        if name in projection.fields:
            raise QueryError(
                "MALFORMED_QUERY", f"duplicate field selected: {ref.text}", ref.position
            )
        projection.fields[name] = resolved.field
        projection.order.append(("field", name))
        return
    reference = definition.parent(path[0])
    if reference is None:
        if path[0].lower() == definition.name.lower():
            _add_field(schema, projection, ref, path[1:])
            return
        resolve(schema, definition, FieldRef(path, ref.position))  # raises INVALID_FIELD
        raise AssertionError("unreachable")
    key = str(reference.relationship)
    if key not in projection.parents:
        target = schema.get(str(reference.reference_to))
        projection.parents[key] = (reference, Projection(target))
        projection.order.append(("parent", key))
    _add_field(schema, projection.parents[key][1], ref, path[1:])


def top_rows(schema: Schema, query_plan: Plan, tables: Tables, *, deleted: bool) -> list[Record]:
    table = tables[query_plan.definition.name].values()
    predicate = query_plan.predicate
    rows = [
        record
        for record in table
        if (deleted or not record["IsDeleted"]) and (predicate is None or predicate(record))
    ]
    sort_rows(schema, query_plan.definition, query_plan.order_by, rows, tables)
    end = query_plan.offset + query_plan.limit if query_plan.limit is not None else None
    return rows[query_plan.offset : end]


def child_rows(
    schema: Schema,
    child: ChildPlan,
    candidates: list[Record],
    tables: Tables,
) -> list[Record]:
    rows = [r for r in candidates if child.predicate is None or child.predicate(r)]
    if child.order_by:
        sort_rows(schema, child.definition, child.order_by, rows, tables)
    return rows[: child.limit] if child.limit is not None else rows


ChildResult = Callable[[str, Record], Any]
"""Renders the nested result of the named child relationship for one parent record."""


def render_row(
    projection: Projection,
    record: Record,
    version: str,
    tables: Tables,
    child_result: ChildResult | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {"attributes": attributes(projection.definition, record["Id"], version)}
    for kind, key in projection.order:
        if kind == "field":
            row[key] = render(projection.fields[key], record.get(key))
        elif kind == "parent":
            reference, parent_projection = projection.parents[key]
            parent_id = record.get(reference.name)
            parent = tables[parent_projection.definition.name].get(parent_id) if parent_id else None
            row[key] = (
                render_row(parent_projection, parent, version, tables)
                if parent is not None
                else None
            )
        else:
            row[key] = child_result(key, record) if child_result else None
    return row
