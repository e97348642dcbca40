"""Which connection names this ledger has served, and what each one was.

A connection's name keys its rows everywhere (invoices, payments, customer links,
cursors, inbox events). If the configuration later points that name at another
company — another account of the same kind, or another connector kind — those rows
would be read against the wrong books: invoices "missing", payments tombstoned, customers
linked across legal entities. So the first time a name is used the ledger records its
kind and, when the connector can tell it without a call, its account; every later
start compares and refuses a change with the key to restore.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from billsync.sync.ledger.base import Store, insert_for
from billsync.sync.ledger.schema import connections


@dataclass(frozen=True)
class ConnectionPin:
    """What a connection name is: its connector ``kind`` and vendor ``account`` (None:
    the connector does not say, or not yet)."""

    kind: str
    account: str | None = None


@dataclass(frozen=True)
class PinConflict:
    name: str
    recorded: ConnectionPin
    configured: ConnectionPin


class ConnectionStore(Store):
    def pinned_connections(self) -> dict[str, ConnectionPin]:
        with self._read() as conn:
            rows = conn.execute(sa.select(connections)).all()
        return {str(r.name): ConnectionPin(str(r.kind), r.account) for r in rows}

    def pin_connections(self, configured: Mapping[str, ConnectionPin]) -> list[PinConflict]:
        """Record each configured connection the first time it is seen (and its account
        the first time it is known); return those that disagree with the record,
        changing nothing for them."""
        conflicts: list[PinConflict] = []
        with self._write() as conn:
            recorded = {
                str(r.name): ConnectionPin(str(r.kind), r.account)
                for r in conn.execute(sa.select(connections))
            }
            for name, pin in configured.items():
                known = recorded.get(name)
                if known is None:
                    conn.execute(
                        insert_for(conn, connections)
                        .values(
                            name=name,
                            kind=pin.kind,
                            account=pin.account,
                            first_seen_at=self._clock(),
                        )
                        .on_conflict_do_nothing()
                    )
                elif known.kind != pin.kind or (
                    known.account and pin.account and known.account != pin.account
                ):
                    conflicts.append(PinConflict(name, known, pin))
                elif known.account is None and pin.account:
                    conn.execute(
                        connections.update()
                        .where(connections.c.name == name, connections.c.account.is_(None))
                        .values(account=pin.account)
                    )
        return conflicts
