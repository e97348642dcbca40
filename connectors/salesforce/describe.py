"""Do the Salesforce fields the mapping names exist? One describe per object.

`billsync mappings check --config` reads Opportunity, Account and OpportunityLineItem
(and any object a relationship path reaches, e.g. ``Bill_To_Contact__r.Email`` reaches
Contact through the field whose relationshipName is ``Bill_To_Contact__r``) and reports
every path that names no field, and every write-back field the integration user cannot
update. Without it a wrong field surfaces only as INVALID_FIELD on the first pull.
Names compare without case, as SOQL does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from billsync.connectors.salesforce.fields import (
    ACCOUNT_FIELDS,
    LINE_FIELDS,
    OPPORTUNITY_FIELDS,
    DealFieldPaths,
    WriteBackFields,
)

__all__ = ["FieldProblem", "SchemaReader", "check_fields"]


class SchemaReader(Protocol):
    def describe(self, sobject: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FieldProblem:
    key: str  # where the path comes from: source.po_number, writeback.status, standard
    path: str
    reason: str

    def __str__(self) -> str:
        return f"salesforce: {self.key}: {self.path}: {self.reason}"


class _Objects:
    """Describes read once each."""

    def __init__(self, reader: SchemaReader) -> None:
        self._reader = reader
        self._fields: dict[str, dict[str, dict[str, Any]]] = {}

    def fields(self, sobject: str) -> dict[str, dict[str, Any]]:
        if sobject not in self._fields:
            described = self._reader.describe(sobject)
            self._fields[sobject] = {
                str(f["name"]).lower(): f for f in described.get("fields") or []
            }
        return self._fields[sobject]

    def resolve(self, sobject: str, path: str) -> tuple[dict[str, Any] | None, str]:
        """The field at ``path`` from ``sobject``, or None and why not."""
        *hops, last = path.split(".")
        here = sobject
        for hop in hops:
            relation = next(
                (
                    f
                    for f in self.fields(here).values()
                    if str(f.get("relationshipName") or "").lower() == hop.lower()
                ),
                None,
            )
            if relation is None or not relation.get("referenceTo"):
                return None, f"{here} has no relationship {hop}"
            here = str(relation["referenceTo"][0])
        found = self.fields(here).get(last.lower())
        return (found, "") if found is not None else (None, f"{here} has no field {last}")


def check_fields(
    reader: SchemaReader, paths: DealFieldPaths, writeback: WriteBackFields
) -> list[FieldProblem]:
    """Every mapped and standard field path that does not exist, and write-back fields
    that exist but cannot be updated."""
    objects = _Objects(reader)
    problems: list[FieldProblem] = []
    checks: Iterable[tuple[str, str, str]] = [
        *(("standard", "Opportunity", p) for p in (*OPPORTUNITY_FIELDS, *ACCOUNT_FIELDS)),
        *(("standard", "OpportunityLineItem", p) for p in LINE_FIELDS),
        *((f"source.{k}", "Opportunity", p) for k, p in paths.configured().items()),
    ]
    for key, sobject, path in checks:
        found, reason = objects.resolve(sobject, path)
        if found is None:
            problems.append(FieldProblem(key, path, reason))
    for name in WriteBackFields.__dataclass_fields__:
        path = getattr(writeback, name)
        if path is None:
            continue
        found, reason = objects.resolve("Opportunity", path)
        if found is None:
            problems.append(FieldProblem(f"writeback.{name}", path, reason))
        elif not found.get("updateable", True):
            problems.append(
                FieldProblem(
                    f"writeback.{name}",
                    path,
                    "exists but the integration user cannot update it (field-level security)",
                )
            )
    return problems
