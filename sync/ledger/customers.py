"""Customer links: source account → target customer, so a known customer costs no call."""

from __future__ import annotations

import sqlalchemy as sa

from sync.ledger.base import Store, insert_for
from sync.ledger.schema import customer_links


class CustomerLinkStore(Store):
    def customer_link(self, target: str, account_id: str) -> str | None:
        with self._read() as conn:
            value = conn.execute(
                sa.select(customer_links.c.external_id).where(
                    customer_links.c.target == target, customer_links.c.account_id == account_id
                )
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def link_customer(
        self, target: str, account_id: str, external_id: str, name: str | None = None
    ) -> None:
        """Remember (or replace) the target customer for an account."""
        now = self._now()
        with self._write() as conn:
            stmt = insert_for(conn, customer_links).values(
                target=target, account_id=account_id, external_id=external_id, name=name,
                updated_at=now,
            )  # fmt: skip
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[customer_links.c.target, customer_links.c.account_id],
                    set_={
                        "external_id": stmt.excluded.external_id,
                        "name": stmt.excluded.name,
                        "updated_at": stmt.excluded.updated_at,
                    },
                )
            )

    def unlink_customer(self, target: str, account_id: str) -> bool:
        """Forget a link (e.g. the customer was deleted in the target out of band)."""
        with self._write() as conn:
            result = conn.execute(
                sa.delete(customer_links).where(
                    customer_links.c.target == target, customer_links.c.account_id == account_id
                )
            )
        return bool(result.rowcount)
