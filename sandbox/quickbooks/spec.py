"""What each entity type contributes to a write: its rules and derived fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from billsync.sandbox.quickbooks.errors import unsupported
from billsync.sandbox.quickbooks.store import Realm, Record
from billsync.sandbox.quickbooks.timefmt import stamp

SERVER_FIELDS = frozenset({"Id", "SyncToken", "MetaData", "domain", "sparse", "status"})


@dataclass
class Write:
    """One write in progress."""

    realm: Realm
    now: datetime
    seeding: bool = False

    @property
    def stamp(self) -> str:
        return stamp(self.now)


class Spec:
    """Rules of one entity type. `prepare` validates and derives in place (raising the
    first QboFault found, as QBO reports only the first); `commit` updates indexes and
    dependent records once the record is stored; `forget` undoes that on delete."""

    entity: ClassVar[str] = ""
    derived: ClassVar[frozenset[str]] = frozenset()
    deletable: ClassVar[bool] = False
    read_only: ClassVar[bool] = False

    def prepare(self, w: Write, record: Record, old: Record | None) -> None:
        raise NotImplementedError

    def commit(self, w: Write, record: Record, old: Record | None) -> None:
        return None

    def forget(self, w: Write, record: Record) -> None:
        return None

    def void(self, w: Write, record: Record) -> None:
        raise unsupported("void", self.entity)

    def send(self, w: Write, record: Record, send_to: str | None) -> None:
        raise unsupported("send", self.entity)


def touch(w: Write, record: Record, bump_sync_token: bool = False) -> None:
    """Mark a dependent record changed (e.g. an invoice whose balance a payment moved):
    its LastUpdatedTime moves so CDC and LastUpdatedTime queries see it."""
    meta = record.setdefault("MetaData", {})
    meta["LastUpdatedTime"] = w.stamp
    if bump_sync_token:
        record["SyncToken"] = str(int(record.get("SyncToken", "0")) + 1)
