"""One invoice per deal across all targets (DESIGN.md "Exactly once", issue 16).

A deal is routed to a target by its data, `sync.default_target` and the routing values,
and any of these may change after an attempt whose answer was lost. The rules, in one
place:

- a deal with an invoice in any target is never created in another one;
- while a deal's intent is unresolved in target A (``invoicing`` or ``failed``, no
  invoice id: the create may have reached A), no other target creates for it: A is
  looked up by the reference the intent stored first. Found → adopted in A, and the
  change of routing is a `routing_changed_after_invoice` discrepancy naming both
  targets; confirmed absent → A's intent is closed as ``abandoned`` (audited, its
  retry item resolved with a note), and only then may B create;
- moving an invoiced deal to another target is an operator's act (`reroute`), refused
  while the invoice in the old target is live.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from billsync.sync.engine.failures import INVOICE
from billsync.sync.ledger import Fence, Ledger
from billsync.sync.ledger.models import DealRecord, DealState, WorkStatus

UNRESOLVED = frozenset({DealState.INVOICING, DealState.FAILED})
CLOSED = frozenset({DealState.ABANDONED, DealState.REROUTED})
# Invoice statuses (ledger copy of the target's) that no longer bill anybody.
DEAD_INVOICE = frozenset({"void", "deleted"})
ABANDONED_ACTION = "intent.abandoned"
REROUTED_ACTION = "deal.rerouted"


def unresolved(record: DealRecord) -> bool:
    """The create may have reached the target and nobody knows yet."""
    return record.external_invoice_id is None and record.state in UNRESOLVED


def invoiced(records: Iterable[DealRecord]) -> DealRecord | None:
    """The record that holds the deal's invoice, in whichever target."""
    return next((r for r in records if r.external_invoice_id is not None), None)


def unresolved_elsewhere(records: Iterable[DealRecord], target: str) -> list[DealRecord]:
    """Intents in other targets that must be resolved before ``target`` may create."""
    return [r for r in records if r.target != target and unresolved(r)]


def abandon(
    ledger: Ledger,
    record: DealRecord,
    *,
    now_routed_to: str,
    actor: str,
    fence: Fence | None,
) -> DealRecord:
    """Close ``record``'s intent: looked up by its reference and confirmed absent. The
    audit row and the resolved retry item say why; nothing is closed silently."""
    note = (
        f"looked up in {record.target} by reference {record.reference or record.deal_id}: "
        f"not there; the deal is now routed to {now_routed_to}"
    )
    closed = ledger.close_intent(
        record.deal_id,
        record.target,
        DealState.ABANDONED,
        actor=actor,
        action=ABANDONED_ACTION,
        details={
            "note": note,
            "reference": record.reference,
            "idempotency_key": record.idempotency_key,
            "routed_to": now_routed_to,
        },
        fence=fence,
    )
    _resolve_work(ledger, record, actor, note)
    return closed


class RerouteRefused(Exception):
    """The deal cannot be moved now; the message says what to do first."""


@dataclass(frozen=True)
class Rerouted:
    deal_id: str
    to: str
    closed: tuple[DealRecord, ...]


def reroute(
    ledger: Ledger, deal_id: str, to: str, *, note: str, actor: str, now: datetime
) -> Rerouted:
    """Move a deal to target ``to``: an operator's act, audited, refused while the deal
    has a live invoice or an unresolved intent in another target.

    Every other target's record is closed as ``rerouted`` (its voided invoice stays in
    the invoices table and the audit row), and the deal is queued for the next run's
    retry stage, which reads it again and invoices it where its routing now points.
    """
    if not note.strip():
        raise RerouteRefused("give --note: why the deal moves (it goes to the audit trail)")
    records = ledger.deal_rows(deal_id)
    if not records:
        raise RerouteRefused(f"the ledger knows no deal {deal_id}")
    movable: list[DealRecord] = []
    for record in records:
        if record.target == to or record.state in CLOSED:
            if record.target == to and record.external_invoice_id is not None:
                raise RerouteRefused(
                    f"deal {deal_id} is already invoiced in {to} "
                    f"(invoice {record.external_invoice_id}); nothing to move"
                )
            continue
        if unresolved(record):
            raise RerouteRefused(
                f"deal {deal_id} has an unresolved invoice attempt in {record.target} "
                f"(state {record.state}); run `billsync run` first: it looks the invoice up "
                f"in {record.target} and adopts it or closes the attempt"
            )
        if record.external_invoice_id is not None:
            invoice = ledger.get_invoice(record.target, record.external_invoice_id)
            status = invoice.status if invoice is not None else "unknown"
            if status not in DEAD_INVOICE:
                raise RerouteRefused(
                    f"deal {deal_id} has a live invoice in {record.target} "
                    f"({record.external_invoice_id}, status {status}): void it in "
                    f"{record.target} first, then run `billsync reconcile` so the ledger "
                    f"sees it voided, then run this again"
                )
        movable.append(record)
    closed = []
    for record in movable:
        details = {
            "note": note,
            "to": to,
            "invoice": record.external_invoice_id,
            "idempotency_key": record.idempotency_key,
        }
        closed.append(
            ledger.close_intent(
                deal_id,
                record.target,
                DealState.REROUTED,
                actor=actor,
                action=REROUTED_ACTION,
                details=details,
            )
        )
    payload = {"deal_id": deal_id, "target": to, "stage": "invoice", "rerouted_by": actor}
    ledger.enqueue(INVOICE, deal_id, payload, now)
    return Rerouted(deal_id, to, tuple(closed))


def _resolve_work(ledger: Ledger, record: DealRecord, actor: str, note: str) -> None:
    """Close the deal's retry item if it is this target's (items are keyed by deal)."""
    item = ledger.find_work(INVOICE, record.deal_id)
    if item is None or str(item.payload.get("target")) != record.target:
        return
    if item.status in (WorkStatus.PENDING, WorkStatus.LEASED, WorkStatus.DEAD):
        ledger.resolve_work(item.id, actor, note)
