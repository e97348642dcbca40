"""Customer links: source account → target customer, so a known customer costs no call.

The engine writes links as it resolves customers; an operator changes them with
`billsync customers link|unlink` (e.g. the customer was deleted in the target out of
band), and then the change and its audit row commit together."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from billsync.sync.ledger.audit import insert_audit
from billsync.sync.ledger.base import Store, insert_for, to_record
from billsync.sync.ledger.models import CustomerLink
from billsync.sync.ledger.schema import customer_links


def customer_subject(target: str, account_id: str) -> str:
    """The audit subject of one link."""
    return f"customer:{target}:{account_id}"


class CustomerLinkStore(Store):
    def customer_link(self, target: str, account_id: str) -> str | None:
        with self._read() as conn:
            return _linked(conn, target, account_id)

    def linked_customers(self, target: str, account_ids: Collection[str]) -> dict[str, str]:
        """`customer_link` for many accounts of one target in one read: account → id."""
        found: dict[str, str] = {}
        ordered = sorted(set(account_ids))
        with self._read() as conn:
            for start in range(0, len(ordered), _ACCOUNTS_PER_QUERY):
                chunk = ordered[start : start + _ACCOUNTS_PER_QUERY]
                for row in conn.execute(_LINKED_MANY, {"b_target": target, "b_accounts": chunk}):
                    found[str(row.account_id)] = str(row.external_id)
        return found

    def customer_owners(self, target: str, external_ids: Collection[str]) -> dict[str, list[str]]:
        """The accounts each of these target customers is linked to: id -> accounts."""
        found: dict[str, list[str]] = {}
        ordered = sorted(set(external_ids))
        with self._read() as conn:
            for start in range(0, len(ordered), _ACCOUNTS_PER_QUERY):
                chunk = ordered[start : start + _ACCOUNTS_PER_QUERY]
                for row in conn.execute(_OWNERS, {"b_target": target, "b_ids": chunk}):
                    found.setdefault(str(row.external_id), []).append(str(row.account_id))
        return found

    def shared_customers(self) -> list[tuple[str, str, list[str]]]:
        """Target customers linked to two or more accounts: (target, id, accounts)."""
        shared = (
            sa.select(customer_links.c.target, customer_links.c.external_id)
            .group_by(customer_links.c.target, customer_links.c.external_id)
            .having(sa.func.count() > 1)
            .subquery()
        )
        query = (
            sa.select(
                customer_links.c.target, customer_links.c.external_id, customer_links.c.account_id
            )
            .join(
                shared,
                sa.and_(
                    shared.c.target == customer_links.c.target,
                    shared.c.external_id == customer_links.c.external_id,
                ),
            )
            .order_by(
                customer_links.c.target, customer_links.c.external_id, customer_links.c.account_id
            )
        )
        grouped: dict[tuple[str, str], list[str]] = {}
        with self._read() as conn:
            for row in conn.execute(query):
                grouped.setdefault((row.target, row.external_id), []).append(row.account_id)
        return [(target, external, accounts) for (target, external), accounts in grouped.items()]

    def customer_links(
        self, target: str | None = None, account_id: str | None = None, limit: int = 1000
    ) -> list[CustomerLink]:
        """Links, optionally of one target and/or one account, by target then account."""
        query = sa.select(customer_links).order_by(
            customer_links.c.target, customer_links.c.account_id
        )
        if target is not None:
            query = query.where(customer_links.c.target == target)
        if account_id is not None:
            query = query.where(customer_links.c.account_id == account_id)
        with self._read() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [to_record(CustomerLink, row) for row in rows]

    def link_customer(
        self,
        target: str,
        account_id: str,
        external_id: str,
        name: str | None = None,
        *,
        method: str | None = None,
        evidence: dict[str, Any] | None = None,
        actor: str | None = None,
        note: str | None = None,
    ) -> None:
        """Remember (or replace) the target customer for an account, with how it was
        found (``method``: created | matched, ``evidence``: what agreed). With an
        ``actor`` (an operator, not the engine) the link is ``operator``-made, its
        evidence the note, and the change is audited in the same transaction."""
        now = self._now()
        if actor:
            method, evidence = "operator", {"note": note, "actor": actor}
        with self._write() as conn:
            before = _linked(conn, target, account_id) if actor else None
            stmt = insert_for(conn, customer_links).values(
                target=target, account_id=account_id, external_id=external_id, name=name,
                updated_at=now, method=method, evidence=evidence,
            )  # fmt: skip
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[customer_links.c.target, customer_links.c.account_id],
                    set_={
                        "external_id": stmt.excluded.external_id,
                        "name": stmt.excluded.name,
                        "updated_at": stmt.excluded.updated_at,
                        "method": stmt.excluded.method,
                        "evidence": stmt.excluded.evidence,
                    },
                )
            )
            if actor:
                details: dict[str, Any] = {"before": before, "after": external_id, "note": note}
                insert_audit(
                    conn, at=now, actor=actor, action="customer.linked",
                    subject=customer_subject(target, account_id), details=details,
                )  # fmt: skip

    def unlink_customer(
        self, target: str, account_id: str, *, actor: str | None = None, note: str | None = None
    ) -> bool:
        """Forget a link, so the next invoice of the account resolves (or creates) its
        customer again; False if there was none. Audited when an ``actor`` is given."""
        now = self._now()
        with self._write() as conn:
            before = _linked(conn, target, account_id)
            if before is None:
                return False
            conn.execute(
                sa.delete(customer_links).where(
                    customer_links.c.target == target, customer_links.c.account_id == account_id
                )
            )
            if actor:
                insert_audit(
                    conn, at=now, actor=actor, action="customer.unlinked",
                    subject=customer_subject(target, account_id),
                    details={"before": before, "note": note},
                )  # fmt: skip
        return True


# Built once: the engine resolves a customer for every invoice.
_LINKED = sa.select(customer_links.c.external_id).where(
    customer_links.c.target == sa.bindparam("b_target"),
    customer_links.c.account_id == sa.bindparam("b_account"),
)
_LINKED_MANY = sa.select(customer_links.c.account_id, customer_links.c.external_id).where(
    customer_links.c.target == sa.bindparam("b_target"),
    customer_links.c.account_id.in_(sa.bindparam("b_accounts", expanding=True)),
)
_OWNERS = sa.select(customer_links.c.external_id, customer_links.c.account_id).where(
    customer_links.c.target == sa.bindparam("b_target"),
    customer_links.c.external_id.in_(sa.bindparam("b_ids", expanding=True)),
)
_ACCOUNTS_PER_QUERY = 500  # bound parameters per IN (…): see deals._IDS_PER_QUERY


def _linked(conn: Connection, target: str, account_id: str) -> str | None:
    value = conn.execute(
        _LINKED, {"b_target": target, "b_account": account_id}
    ).scalar_one_or_none()
    return None if value is None else str(value)
