"""Create, read, update (full and sparse), delete, void and send, as QBO applies them.

The entity rules live in the specs (`names`, `sales`, `payments`); this module owns
what is common: Id and SyncToken, MetaData, optimistic locking (5010), tombstones for
CDC, and the change events that become webhooks.
"""

from __future__ import annotations

from typing import Any

from billsync.sandbox.quickbooks.errors import (
    deleted_txn,
    invalid,
    not_found,
    required,
    stale,
    unsupported,
)
from billsync.sandbox.quickbooks.spec import SERVER_FIELDS, Spec, Write
from billsync.sandbox.quickbooks.store import TRANSACTIONS, Record
from billsync.sandbox.quickbooks.values import as_bool, is_blank


class Operations:
    def __init__(self, specs: dict[str, Spec]) -> None:
        self.specs = specs

    def spec(self, entity: str) -> Spec:
        return self.specs[entity]

    def read(self, w: Write, entity: str, record_id: str) -> Record:
        record = w.realm.get(entity, record_id)
        if record is None:
            raise self._missing(w, entity, record_id)
        return record

    def save(self, w: Write, entity: str, body: Any) -> Record:
        """POST /<entity>: an Id in the body makes it an update."""
        if not isinstance(body, dict):
            raise invalid(f"Request body must be a {entity} object")
        if is_blank(body.get("Id")):
            return self.create(w, entity, body)
        return self.update(w, entity, body)

    def create(self, w: Write, entity: str, body: dict[str, Any]) -> Record:
        spec = self.specs[entity]
        if spec.read_only and not w.seeding:
            raise unsupported("create", entity)
        record = _writable(body, spec)
        if w.seeding and not is_blank(body.get("Id")):
            # Seeds may bring their own ids; specs read record["Id"] to exclude self.
            record["Id"] = str(body["Id"])
            w.realm.claim_id(entity, record["Id"])
        spec.prepare(w, record, None)
        record_id = record.get("Id") or w.realm.new_id(entity)
        record.update(
            {
                "Id": record_id,
                "SyncToken": "0",
                "domain": "QBO",
                "sparse": False,
                "MetaData": {"CreateTime": w.stamp, "LastUpdatedTime": w.stamp},
            }
        )
        w.realm.records[entity][record_id] = record
        spec.commit(w, record, None)
        w.realm.emit(entity, record_id, "Create", w.now)
        return record

    def update(self, w: Write, entity: str, body: dict[str, Any]) -> Record:
        spec = self.specs[entity]
        if spec.read_only and not w.seeding:
            raise unsupported("update", entity)
        old = self._current(w, entity, body)
        record = _writable(body, spec)
        if as_bool(body.get("sparse"), False):
            # Sparse: only the fields sent change. Line arrays are replaced whole.
            kept = {k: v for k, v in old.items() if k not in SERVER_FIELDS | spec.derived}
            record = {**kept, **record}
        record["Id"] = old["Id"]
        spec.prepare(w, record, old)
        self._restamp(w, record, old)
        w.realm.records[entity][old["Id"]] = record
        spec.commit(w, record, old)
        w.realm.emit(entity, old["Id"], "Update", w.now)
        return record

    def delete(self, w: Write, entity: str, body: Any) -> Record:
        spec = self.specs[entity]
        if not spec.deletable:
            raise unsupported("delete", entity)
        old = self._current(w, entity, body)
        spec.forget(w, old)
        del w.realm.records[entity][old["Id"]]
        tombstone = {
            "Id": old["Id"],
            "status": "Deleted",
            "domain": "QBO",
            "MetaData": {"LastUpdatedTime": w.stamp},
        }
        w.realm.deleted[entity][old["Id"]] = tombstone
        w.realm.emit(entity, old["Id"], "Delete", w.now)
        return {"domain": "QBO", "status": "Deleted", "Id": old["Id"]}

    def void(self, w: Write, entity: str, body: Any) -> Record:
        spec = self.specs[entity]
        old = self._current(w, entity, body)
        record = {k: v for k, v in old.items()}
        spec.void(w, record)
        self._restamp(w, record, old)
        w.realm.records[entity][old["Id"]] = record
        spec.commit(w, record, old)
        w.realm.emit(entity, old["Id"], "Void", w.now)
        return record

    def send(self, w: Write, entity: str, record_id: str, send_to: str | None) -> Record:
        spec = self.specs[entity]
        old = self.read(w, entity, record_id)
        record = {k: v for k, v in old.items()}
        spec.send(w, record, send_to)
        self._restamp(w, record, old)
        w.realm.records[entity][old["Id"]] = record
        spec.commit(w, record, old)
        w.realm.emit(entity, old["Id"], "Emailed", w.now)
        return record

    def _current(self, w: Write, entity: str, body: Any) -> Record:
        """The record an update/delete/void names, after the SyncToken check."""
        if not isinstance(body, dict) or is_blank(body.get("Id")):
            raise required("Id")
        old = self.read(w, entity, str(body["Id"]))
        if w.seeding:
            return old
        token = body.get("SyncToken")
        if is_blank(token) and token != 0:
            raise required("SyncToken")
        if str(token).strip() != old["SyncToken"]:
            raise stale(entity)
        return old

    def _missing(self, w: Write, entity: str, record_id: str) -> Exception:
        if entity in TRANSACTIONS or record_id in w.realm.deleted[entity]:
            return deleted_txn(entity)
        return not_found(
            detail=f"Object Not Found : Something you're trying to use has been made "
            f"inactive or does not exist: {entity} {record_id}."
        )

    @staticmethod
    def _restamp(w: Write, record: Record, old: Record) -> None:
        record.update(
            {
                "Id": old["Id"],
                "SyncToken": str(int(old["SyncToken"]) + 1),
                "domain": "QBO",
                "sparse": False,
                "MetaData": {
                    "CreateTime": old["MetaData"]["CreateTime"],
                    "LastUpdatedTime": w.stamp,
                },
            }
        )


def _writable(body: dict[str, Any], spec: Spec) -> Record:
    return {k: v for k, v in body.items() if k not in SERVER_FIELDS and k not in spec.derived}
