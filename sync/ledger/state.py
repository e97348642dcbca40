"""Small named values that must survive restarts: feed cursors and OAuth credentials."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from billsync.sync.ledger.base import Store, insert_for
from billsync.sync.ledger.models import StoredCredentials
from billsync.sync.ledger.schema import credentials, cursors


class CursorStore(Store):
    def get_cursor(self, name: str) -> str | None:
        with self._read() as conn:
            value = conn.execute(
                sa.select(cursors.c.value).where(cursors.c.name == name)
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def set_cursor(self, name: str, value: str) -> None:
        """Move a cursor. Callers advance it only past data already recorded, so a
        crash between the two re-reads a little instead of skipping anything."""
        now = self._now()
        with self._write() as conn:
            stmt = insert_for(conn, cursors).values(name=name, value=value, updated_at=now)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[cursors.c.name],
                    set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
                )
            )


class CredentialStore(Store):
    """Rotating OAuth tokens with optimistic concurrency.

    A vendor may rotate the refresh token on every refresh, the old one soon to stop
    working, so losing a save means a manual reconnect. The refresher loads
    (data, version), refreshes, and saves with that version; if another process saved
    first the save returns False and the caller reloads instead of clobbering the
    newer token. Tokens are stored as given (not encrypted): protect the database.
    """

    def load_credentials(self, name: str) -> StoredCredentials | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(credentials.c.data, credentials.c.version).where(
                    credentials.c.name == name
                )
            ).first()
        return None if row is None else StoredCredentials(dict(row.data), int(row.version))

    def save_credentials(
        self, name: str, data: dict[str, Any], expected_version: int | None
    ) -> bool:
        """Compare-and-swap, committed before returning.

        ``expected_version`` is the version that was loaded, or None to create the
        entry (which fails if it exists). On success the stored version is
        ``expected_version + 1`` (1 for a new entry).
        """
        now = self._now()
        with self._committed_write("a credential") as conn:
            if expected_version is None:
                stmt = insert_for(conn, credentials).values(
                    name=name, data=data, version=1, updated_at=now
                )
                inserted = conn.execute(
                    stmt.on_conflict_do_nothing(index_elements=[credentials.c.name]).returning(
                        credentials.c.name
                    )
                ).first()
                return inserted is not None
            result = conn.execute(
                sa.update(credentials)
                .where(credentials.c.name == name, credentials.c.version == expected_version)
                .values(data=data, version=expected_version + 1, updated_at=now)
            )
            return result.rowcount == 1
