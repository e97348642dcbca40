"""Whole records as the sObject endpoints and the admin state show them."""

from __future__ import annotations

from typing import Any

from billsync.sandbox.salesforce.schema import ObjectDef
from billsync.sandbox.salesforce.values import render


def attributes(definition: ObjectDef, record_id: str, version: str) -> dict[str, str]:
    return {
        "type": definition.name,
        "url": f"/services/data/v{version}/sobjects/{definition.name}/{record_id}",
    }


def full_record(
    definition: ObjectDef, record: dict[str, Any], version: str, fields: list[str] | None = None
) -> dict[str, Any]:
    """Every field (or the chosen ones), in describe order, after `attributes`."""
    shown: dict[str, Any] = {"attributes": attributes(definition, record["Id"], version)}
    for name in fields or list(definition.fields):
        field = definition.fields[name]
        shown[name] = render(field, record.get(name))
    return shown
