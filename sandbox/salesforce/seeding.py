"""The seed file's `salesforce` section and the admin routes' deal bodies.

A deal arrives as an Opportunity with its lines nested under `OpportunityLineItems`,
the shape a SOQL subquery returns, so a seed can be written by hand or exported.
"""

from __future__ import annotations

from typing import Any

from billsync.sandbox.salesforce.errors import WriteError
from billsync.sandbox.salesforce.rules import Source
from billsync.sandbox.salesforce.store import Record, Store

SECTIONS = ("Account", "Product2", "Opportunity")
LINES = "OpportunityLineItems"


def seed(store: Store, data: dict[str, Any]) -> None:
    unknown = set(data) - {"fields", "multi_currency", *SECTIONS}
    if unknown:
        raise ValueError(f"salesforce seed: unknown keys {sorted(unknown)}")
    if "multi_currency" in data:
        store.schema.set_multi_currency(bool(data["multi_currency"]))
    store.schema.add_custom_fields(_mapping(data.get("fields", {}), "fields"))
    for section in SECTIONS:
        rows = data.get(section, [])
        if not isinstance(rows, list):
            raise ValueError(f"salesforce seed: {section} must be a list")
        for position, row in enumerate(rows):
            try:
                if section == "Opportunity":
                    create_deal(store, _mapping(row, section), "seed")
                else:
                    definition = store.schema.get(section)
                    store.apply(store.prepare_create(definition, _mapping(row, section), "seed"))
            except WriteError as exc:
                label = row.get("Id") or row.get("Name") or f"#{position}"
                raise ValueError(
                    f"salesforce seed: {section} {label}: {exc.status_code}: {exc.message}"
                ) from None


def create_deal(store: Store, body: dict[str, Any], source: Source) -> Record:
    """An Opportunity and its nested lines; nothing remains if any part is refused."""
    fields = {key: value for key, value in body.items() if key != LINES}
    lines = _lines(body)
    opportunity = store.apply(store.prepare_create(store.schema.get("Opportunity"), fields, source))
    try:
        for line in lines:
            _create_line(store, opportunity["Id"], line, source)
    except WriteError:
        store.purge(opportunity["Id"])
        raise
    return opportunity


def update_deal(store: Store, record_id: str, body: dict[str, Any]) -> Record:
    """Change a deal's fields and, when `OpportunityLineItems` is given, replace its lines.

    Lines in the new list that carry the `Id` of an existing line are updated in place;
    the others are created; existing lines missing from the list are deleted. Every
    part is validated before anything changes.
    """
    opportunity_def = store.schema.get("Opportunity")
    line_def = store.schema.get("OpportunityLineItem")
    fields = {key: value for key, value in body.items() if key != LINES}
    prepared = [store.prepare_update(opportunity_def, record_id, fields, "admin")]
    opportunity_id = str(prepared[0].record_id)
    removed: list[str] = []
    if LINES in body:
        relationship = opportunity_def.children["opportunitylineitems"]
        current = {line["Id"]: line for line in store.children(relationship, opportunity_id)}
        kept: set[str] = set()
        for line in _lines(body):
            line_id = line.get("Id")
            if isinstance(line_id, str) and line_id in current:
                kept.add(line_id)
                changes = {k: v for k, v in line.items() if k not in ("Id", "OpportunityId")}
                prepared.append(store.prepare_update(line_def, line_id, changes, "admin"))
            else:
                line = {**line, "OpportunityId": opportunity_id}
                prepared.append(store.prepare_create(line_def, line, "admin"))
        removed = [line_id for line_id in current if line_id not in kept]
    with store.transaction():
        for line_id in removed:
            store.delete(line_def, line_id)
        for write in prepared:
            store.apply(write)
    return store.tables["Opportunity"][opportunity_id]


def _create_line(store: Store, opportunity_id: str, line: dict[str, Any], source: Source) -> None:
    body = {**line, "OpportunityId": opportunity_id}
    definition = store.schema.get("OpportunityLineItem")
    store.apply(store.prepare_create(definition, body, source))


def _lines(body: dict[str, Any]) -> list[dict[str, Any]]:
    lines = body.get(LINES) or []
    if isinstance(lines, dict):
        lines = lines.get("records", [])  # the subquery shape {"records": [...]}
    if not isinstance(lines, list):
        raise WriteError("JSON_PARSER_ERROR", f"{LINES} must be a list of line items", [LINES])
    return [_mapping(line, LINES) for line in lines]


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"salesforce seed: {where}: expected an object, got {value!r}")
    return value
