"""The org's records, their indexes, and every write path (API, admin, seed).

Records are plain dicts of canonical field name -> Python value, one dict per object
type keyed by 18-character id (insertion order = creation order, which is also the
order the API returns rows in when a query has no ORDER BY). Child lists are indexed by
parent id so subqueries and roll-ups never scan a whole table.

Writes are two-phase (`prepare_*` validates, `apply` mutates) so sObject Collections
with allOrNone can refuse a whole request without undoing anything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from billsync.sandbox.core import Clock
from billsync.sandbox.salesforce import ids, rules
from billsync.sandbox.salesforce.errors import WriteError
from billsync.sandbox.salesforce.failures import FailurePlan
from billsync.sandbox.salesforce.rules import Source
from billsync.sandbox.salesforce.schema import ChildRelationship, ObjectDef, Schema
from billsync.sandbox.salesforce.values import truncate_ms

Record = dict[str, Any]


@dataclass
class PreparedWrite:
    definition: ObjectDef
    record_id: str | None
    """None for a create (unless the seed or admin body names the id)."""
    changes: dict[str, Any]
    creating: bool
    source: Source


class Store:
    def __init__(self, schema: Schema, clock: Clock, corporate_currency: str = "USD") -> None:
        self.schema = schema
        self.clock = clock
        self.corporate_currency = corporate_currency
        self.id_factory = ids.IdFactory()
        self.failures = FailurePlan()
        self.tables: dict[str, dict[str, Record]] = {}
        self._instant: datetime | None = None
        self._short: dict[str, str] = {}
        self._children: dict[tuple[str, str], dict[str, list[str]]] = {}
        self.reset()

    def reset(self) -> None:
        self.tables = {definition.name: {} for definition in self.schema.objects.values()}
        self._short.clear()
        self._children = defaultdict(lambda: defaultdict(list))
        self.id_factory.reset()
        self.failures.clear()

    def now(self) -> datetime:
        return self._instant or truncate_ms(self.clock.now())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes made together share one timestamp, as in one Salesforce transaction."""
        outer = self._instant
        self._instant = outer or truncate_ms(self.clock.now())
        try:
            yield
        finally:
            self._instant = outer

    # -- reads ---------------------------------------------------------------------------

    def find(self, record_id: str) -> tuple[ObjectDef, Record] | None:
        """Any record (deleted ones too) by its 15- or 18-character id."""
        full = self._short.get(record_id[:15], record_id) if len(record_id) == 15 else record_id
        definition = self.schema.by_prefix(full)
        if definition is None:
            return None
        record = self.tables[definition.name].get(full)
        return (definition, record) if record is not None else None

    def children(
        self, relationship: ChildRelationship, parent_id: str, *, deleted: bool = False
    ) -> list[Record]:
        table = self.tables[relationship.child]
        child_ids = self._children[(relationship.child, relationship.field)].get(parent_id, [])
        found = [table[child_id] for child_id in child_ids]
        return found if deleted else [record for record in found if not record["IsDeleted"]]

    def target(self, definition: ObjectDef, record_id: Any) -> Record:
        """The live record an update or delete aims at, or the API's error for the id."""
        if not isinstance(record_id, str) or not ids.is_well_formed(record_id):
            raise WriteError("MALFORMED_ID", f"malformed id {record_id}", [])
        if not record_id.startswith(definition.prefix):
            raise WriteError(
                "MALFORMED_ID",
                f"{definition.label} ID: id value of incorrect type: {record_id}",
                ["Id"],
            )
        found = self.find(record_id)
        if found is None:
            raise WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        record = found[1]
        if record["IsDeleted"]:
            raise WriteError("ENTITY_IS_DELETED", "entity is deleted", [])
        return record

    # -- writes --------------------------------------------------------------------------

    def prepare_create(
        self, definition: ObjectDef, body: dict[str, Any], source: Source
    ) -> PreparedWrite:
        changes = rules.validate_fields(definition, body, creating=True, source=source)
        record_id = None
        if source != "api" and body.get("Id"):
            record_id = ids.to18(str(body["Id"]))
            if self.find(record_id) is not None:
                raise WriteError("DUPLICATE_VALUE", f"duplicate value found: Id {record_id}", [])
        merged = self._defaults(definition, changes)
        rules.check_required(definition, merged)
        self._check_references(definition, changes)
        if definition.name == "OpportunityLineItem":
            if source == "api" and not merged.get("Product2Id"):
                raise WriteError(
                    "REQUIRED_FIELD_MISSING", "Required fields are missing: [Product2Id]", []
                )
            rules.check_line(changes, merged, source)
        return PreparedWrite(definition, record_id, changes, True, source)

    def prepare_update(
        self, definition: ObjectDef, record_id: Any, body: dict[str, Any], source: Source
    ) -> PreparedWrite:
        record = self.target(definition, record_id)
        if source == "api":
            self.failures.check(record["Id"])
        changes = rules.validate_fields(definition, body, creating=False, source=source)
        merged = {**record, **changes}
        rules.check_required(definition, merged)
        self._check_references(definition, changes)
        if definition.name == "OpportunityLineItem":
            rules.check_line(changes, merged, source)
        if (
            definition.name == "Opportunity"
            and source == "api"
            and "CurrencyIsoCode" in changes
            and changes["CurrencyIsoCode"] != record.get("CurrencyIsoCode")
            and record["HasOpportunityLineItem"]
        ):
            raise WriteError(
                "FIELD_INTEGRITY_EXCEPTION",
                "Cannot change the currency of an opportunity that has products",
                ["CurrencyIsoCode"],
            )
        return PreparedWrite(definition, record["Id"], changes, False, source)

    def apply(self, prepared: PreparedWrite) -> Record:
        with self.transaction():
            return self._apply(prepared)

    def _apply(self, prepared: PreparedWrite) -> Record:
        definition = prepared.definition
        now = self.now()
        if prepared.creating:
            record = self._defaults(definition, prepared.changes)
            record_id = prepared.record_id or self._fresh_id(definition)
            record.update(Id=record_id, IsDeleted=False)
            for stamp in rules.SYSTEM_STAMPS:
                record.setdefault(stamp, now)
                if record[stamp] is None:
                    record[stamp] = now
            self.tables[definition.name][record_id] = record
            self._short[record_id[:15]] = record_id
            self._index(definition, record)
        else:
            record = self.tables[definition.name][str(prepared.record_id)]
            if definition.name == "Opportunity" and record["HasOpportunityLineItem"]:
                # Amount follows the products; a direct update of it is silently ignored.
                prepared.changes.pop("Amount", None)
            record.update(prepared.changes)
            if prepared.source != "seed" or "SystemModstamp" not in prepared.changes:
                record["LastModifiedDate"] = record["SystemModstamp"] = now
        self._derive(definition, record, prepared)
        return record

    def delete(self, definition: ObjectDef, record_id: str) -> None:
        with self.transaction():
            self._delete(definition, record_id)

    def _delete(self, definition: ObjectDef, record_id: str) -> None:
        record = self.target(definition, record_id)
        now = self.now()
        record.update(IsDeleted=True, SystemModstamp=now)
        for relationship in definition.children.values():
            for child in self.children(relationship, record["Id"]):
                child.update(IsDeleted=True, SystemModstamp=now)
        if definition.name == "OpportunityLineItem":
            self._roll_up(record["OpportunityId"], bump=True)

    def purge(self, record_id: str) -> None:
        """Remove a record without trace (undoing a half-made admin create)."""
        found = self.find(record_id)
        if found is None:
            return
        definition, record = found
        for relationship in definition.children.values():
            for child in self.children(relationship, record["Id"], deleted=True):
                self.purge(child["Id"])
        for field in definition.fields.values():
            if field.type == "reference" and record.get(field.name):
                siblings = self._children[(definition.name, field.name)][record[field.name]]
                siblings.remove(record["Id"])
        del self.tables[definition.name][record["Id"]]
        self._short.pop(record["Id"][:15], None)

    # -- helpers -------------------------------------------------------------------------

    def _fresh_id(self, definition: ObjectDef) -> str:
        while True:
            candidate = self.id_factory.new(definition.prefix)
            if self.find(candidate) is None:
                return candidate

    def _defaults(self, definition: ObjectDef, changes: dict[str, Any]) -> Record:
        record: Record = dict.fromkeys(definition.fields)
        for name, field in definition.fields.items():
            if field.type == "boolean":
                record[name] = False
        if "CurrencyIsoCode" in definition.fields:
            record["CurrencyIsoCode"] = self.corporate_currency
        record.update(changes)
        return record

    def _check_references(self, definition: ObjectDef, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            field = definition.fields[name]
            if field.type != "reference" or value is None or field.reference_to is None:
                continue
            if not value.startswith(self.schema.get(field.reference_to).prefix):
                raise WriteError(
                    "MALFORMED_ID", f"{field.label}: id value of incorrect type: {value}", [name]
                )
            found = self.find(value)
            if found is None:
                raise WriteError(
                    "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name]
                )
            if found[1]["IsDeleted"]:
                raise WriteError("ENTITY_IS_DELETED", "entity is deleted", [name])

    def _index(self, definition: ObjectDef, record: Record) -> None:
        for field in definition.fields.values():
            if field.type == "reference" and record.get(field.name):
                self._children[(definition.name, field.name)][record[field.name]].append(
                    record["Id"]
                )

    def _derive(self, definition: ObjectDef, record: Record, prepared: PreparedWrite) -> None:
        bump = prepared.source != "seed"
        if definition.name == "Opportunity":
            rules.derive_opportunity(record)
            if "CurrencyIsoCode" in prepared.changes and not prepared.creating:
                relationship = definition.children["opportunitylineitems"]
                for line in self.children(relationship, record["Id"]):
                    line["CurrencyIsoCode"] = record["CurrencyIsoCode"]
        elif definition.name == "OpportunityLineItem":
            found = self.find(record["OpportunityId"])
            if found is not None and "CurrencyIsoCode" in definition.fields:
                record["CurrencyIsoCode"] = found[1].get("CurrencyIsoCode")
            self._copy_product(record)
            rules.derive_line(record, prepared.changes)
            self._roll_up(record["OpportunityId"], bump=bump)

    def _copy_product(self, record: Record) -> None:
        product_id = record.get("Product2Id")
        found = self.find(product_id) if product_id else None
        if found is None:
            return
        product = found[1]
        if record.get("ProductCode") is None:
            record["ProductCode"] = product.get("ProductCode")
        if record.get("Name") is None:
            record["Name"] = product.get("Name")

    def _roll_up(self, opportunity_id: str, *, bump: bool) -> None:
        """A line change moves the deal's Amount and SystemModstamp (not LastModifiedDate)."""
        found = self.find(opportunity_id)
        if found is None:
            return
        opportunity = found[1]
        relationship = self.schema.get("Opportunity").children["opportunitylineitems"]
        lines = self.children(relationship, opportunity["Id"])
        if lines:
            opportunity["Amount"] = sum((line["TotalPrice"] for line in lines), Decimal("0.00"))
        opportunity["HasOpportunityLineItem"] = bool(lines)
        if bump:
            opportunity["SystemModstamp"] = max(opportunity["SystemModstamp"], self.now())
