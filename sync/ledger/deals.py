"""Per-deal, per-target state: the intent row that makes invoice creation exactly once."""

from __future__ import annotations

import enum
import functools
from collections.abc import Collection, Iterator
from typing import Any

import sqlalchemy as sa

from billsync.sync.ledger.audit import insert_audit
from billsync.sync.ledger.base import Store, dialect_insert, to_record
from billsync.sync.ledger.leases import Fence, fence_in
from billsync.sync.ledger.models import DealRecord, DealState
from billsync.sync.ledger.schema import deals


class _Unset(enum.Enum):
    TOKEN = 0


UNSET = _Unset.TOKEN  # "leave this column alone", distinct from None ("set it to NULL")

# Ids per IN (…) list: well under SQLite's 32,766 bound parameters and short enough
# for PostgreSQL to plan as an index lookup.
_IDS_PER_QUERY = 500


class IntentConflict(RuntimeError):
    """A new intent would risk a second invoice for the deal.

    Raised when the deal already has an invoice in the target, or an earlier intent
    is still in flight (state ``invoicing``: the vendor call may have succeeded).
    The caller must look the deal up in the target first; see DESIGN "Exactly once".
    """

    def __init__(self, current: DealRecord) -> None:
        super().__init__(
            f"deal {current.deal_id} on {current.target} is {current.state} "
            f"(invoice {current.external_invoice_id or 'unknown'}); "
            "look it up in the target before recording a new intent"
        )
        self.current = current


# The per-deal statements, built once with bind parameters (b_deal_id, b_target): the
# engine runs each of them for every deal (see base.dialect_insert for why).
_BOUND_KEY = sa.and_(
    deals.c.deal_id == sa.bindparam("b_deal_id"), deals.c.target == sa.bindparam("b_target")
)
_GET = sa.select(deals).where(_BOUND_KEY)
_GET_FOR_UPDATE = _GET.with_for_update()
_UPDATE_RETURNING = sa.update(deals).where(_BOUND_KEY).returning(*deals.c)
_SET_STATE = sa.update(deals).where(_BOUND_KEY)
_SET_STATE_IF = sa.update(deals).where(_BOUND_KEY, deals.c.state == sa.bindparam("b_expected"))
_BY_DEAL_IDS = sa.select(deals).where(deals.c.deal_id.in_(sa.bindparam("b_ids", expanding=True)))


@functools.cache
def _intent_insert(dialect: str) -> sa.Insert:
    return (
        dialect_insert(dialect, deals)
        .on_conflict_do_nothing(index_elements=[deals.c.deal_id, deals.c.target])
        .returning(*deals.c)
    )


# Closed records: the deal's intent here ended without an invoice, so a new intent
# (same key or not) starts afresh.
_CLOSED = frozenset({DealState.ABANDONED, DealState.REROUTED})


class DealStore(Store):
    def record_intent(
        self,
        deal_id: str,
        target: str,
        revision: str,
        idempotency_key: str,
        *,
        reference: str | None = None,
        fence: Fence | None = None,
    ) -> DealRecord:
        """Commit "we are about to create an invoice for this revision" before the call.

        Idempotent: recording the same key again returns the stored row unchanged
        (check its state: after a crash it may still be ``invoicing``, which means
        "look up before you create"). A new revision replaces the intent of a deal
        that failed or needs attention; it raises IntentConflict if the deal has an
        invoice or an intent in flight, because that is how duplicates are born.
        ``reference`` is what the invoice will be created with (the DocNumber), so
        every later look-up searches for what was sent. With ``fence`` the intent is
        written only while that lease claim is current (LeaseLost otherwise).
        """
        now = self._now()
        values: dict[str, Any] = {
            "state": DealState.INVOICING.value,
            "revision": revision,
            "idempotency_key": idempotency_key,
            "reference": reference,
            "intent_at": now,
            "last_error": None,
            "updated_at": now,
        }
        key = {"b_deal_id": deal_id, "b_target": target}
        with self._committed_write("an invoice intent") as conn:
            fence_in(conn, fence)
            inserted = conn.execute(
                _intent_insert(conn.dialect.name),
                {"deal_id": deal_id, "target": target, "created_at": now, **values},
            ).first()
            if inserted is not None:
                return to_record(DealRecord, inserted)
            current = to_record(DealRecord, conn.execute(_GET_FOR_UPDATE, key).one())
            closed = current.state in _CLOSED and current.external_invoice_id is None
            if current.idempotency_key == idempotency_key and not closed:
                return current
            if current.external_invoice_id is not None or current.state == DealState.INVOICING:
                raise IntentConflict(current)
            updated = conn.execute(_UPDATE_RETURNING, {**key, **values}).one()
            return to_record(DealRecord, updated)

    def close_intent(
        self,
        deal_id: str,
        target: str,
        state: DealState,
        *,
        actor: str,
        action: str,
        details: dict[str, Any],
        fence: Fence | None = None,
    ) -> DealRecord:
        """Close the deal's record in ``target`` without an invoice there (``abandoned``:
        looked up and confirmed absent; ``rerouted``: an operator moved the deal after
        its invoice here was voided), with an audit row, in one transaction.

        Refused (IntentConflict) if the record changed under the caller: an intent
        closed as ``abandoned`` must still have no invoice. ``details`` go to the audit
        row; the record keeps a one-line reason in ``last_error``.
        """
        if state not in _CLOSED:
            raise ValueError(f"close_intent closes as abandoned or rerouted, not {state}")
        now = self._now()
        key = {"b_deal_id": deal_id, "b_target": target}
        with self._write() as conn:
            fence_in(conn, fence)
            row = conn.execute(_GET_FOR_UPDATE, key).first()
            if row is None:
                raise LookupError(f"deal {deal_id} has no record for {target}")
            current = to_record(DealRecord, row)
            if state == DealState.ABANDONED and (
                current.external_invoice_id is not None or current.state in _CLOSED
            ):
                raise IntentConflict(current)
            reason = str(details.get("note") or action)
            updated = conn.execute(
                _UPDATE_RETURNING,
                {
                    **key,
                    "state": str(state),
                    "external_invoice_id": None,
                    "last_error": reason,
                    "updated_at": now,
                },
            ).one()
            insert_audit(
                conn,
                at=now,
                actor=actor,
                action=action,
                subject=f"deal:{deal_id}",
                details={"target": target, "was": current.state, **details},
            )
            return to_record(DealRecord, updated)

    def get_deal(self, deal_id: str, target: str) -> DealRecord | None:
        with self._read() as conn:
            row = conn.execute(_GET, {"b_deal_id": deal_id, "b_target": target}).first()
        return None if row is None else to_record(DealRecord, row)

    def deals_for(self, deal_ids: Collection[str]) -> dict[tuple[str, str], DealRecord]:
        """Every target's record of these deals, keyed by (deal_id, target), in one read:
        the engine triages a batch of deals with one query instead of several per deal."""
        found: dict[tuple[str, str], DealRecord] = {}
        ids = sorted(set(deal_ids))
        with self._read() as conn:
            for start in range(0, len(ids), _IDS_PER_QUERY):
                chunk = ids[start : start + _IDS_PER_QUERY]
                for row in conn.execute(_BY_DEAL_IDS, {"b_ids": chunk}):
                    record = to_record(DealRecord, row)
                    found[(record.deal_id, record.target)] = record
        return found

    def set_deal_state(
        self,
        deal_id: str,
        target: str,
        state: str,
        *,
        external_invoice_id: str | _Unset | None = UNSET,
        revision: str | _Unset = UNSET,
        last_error: str | _Unset | None = UNSET,
        expected_state: str | None = None,
    ) -> bool:
        """Move a deal to ``state``, optionally setting the named columns.

        With ``expected_state`` the move is compare-and-set: it happens only if the
        deal is still in that state, so two workers cannot both advance one deal.
        Returns False when no row matched (unknown deal or state moved on).
        """
        values: dict[str, Any] = {"state": str(state), "updated_at": self._now()}
        if not isinstance(external_invoice_id, _Unset):
            values["external_invoice_id"] = external_invoice_id
        if not isinstance(revision, _Unset):
            values["revision"] = revision
        if not isinstance(last_error, _Unset):
            values["last_error"] = last_error
        params = {"b_deal_id": deal_id, "b_target": target, **values}
        statement = _SET_STATE
        if expected_state is not None:
            statement, params["b_expected"] = _SET_STATE_IF, str(expected_state)
        with self._write() as conn:
            result = conn.execute(statement, params)
            return result.rowcount == 1

    def deals_in_state(
        self, state: str, target: str | None = None, *, batch_size: int = 500
    ) -> Iterator[DealRecord]:
        """Yield deals in ``state`` ordered by (deal_id, target), a batch at a time.

        Keyset pagination with a short read per batch: memory stays flat, and no
        transaction is held open while the caller works on a deal (on SQLite a long
        read would pin the WAL; on PostgreSQL it would hold a snapshot). A deal whose
        state changes mid-iteration is seen at most once.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        after: tuple[str, str] | None = None
        while True:
            query = sa.select(deals).where(deals.c.state == str(state))
            if target is not None:
                query = query.where(deals.c.target == target)
            if after is not None:
                query = query.where(sa.tuple_(deals.c.deal_id, deals.c.target) > sa.tuple_(*after))
            query = query.order_by(deals.c.deal_id, deals.c.target).limit(batch_size)
            with self._read() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield to_record(DealRecord, row)
            if len(rows) < batch_size:
                return
            after = (rows[-1].deal_id, rows[-1].target)
