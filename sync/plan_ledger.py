"""What a run would really do with the deals `billsync plan` read: the ledger decides.

A planned draft is not an invoice a run would create: the run's triage first asks the
ledger (billsync.sync.engine.invoicing, in this order) and so does this module, read-only:

- a deal invoiced in any target is skipped (if its content changed since, the run
  records a `deal_changed_after_invoice` discrepancy, and creates nothing);
- a deal the mapping rejects waits as needs-attention;
- an intent unresolved in another target than the one the deal now routes to is a
  routing conflict: the run looks it up there first (adopts it, or closes it as absent)
  and creates nothing in the new target this run;
- an intent unresolved in the same target (a crash, a lost answer, a failed attempt) is
  an adoption candidate: the run looks it up by the stored reference, adopts it if
  found, and only otherwise creates it with the same idempotency key;
- a deal that failed for good with this very content and mapping (waiting, or resolved
  by an operator) is a known failure: the run leaves it alone;
- anything else is a new invoice.

Known failures (open items of the retry queue) are listed beside, as the run's retry
stage would meet them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from billsync.core.canonical import Deal
from billsync.mappings.plan import Planned, Rejected
from billsync.sync.engine import routing
from billsync.sync.engine.failures import rejected_before
from billsync.sync.engine.fingerprint import deal_fingerprint, full_fingerprint
from billsync.sync.ledger.models import DealRecord, DealState, WorkItem


class Verdict(StrEnum):
    NEW = "new_invoice"
    ADOPT = "adoption"
    INVOICED = "already_invoiced"
    ROUTING = "routing_conflict"
    REJECTED = "rejected"
    KNOWN_FAILURE = "known_failure"


@dataclass(frozen=True)
class Judged:
    deal_id: str
    verdict: Verdict
    target: str | None
    note: str

    def as_json(self) -> dict[str, Any]:
        return {
            "deal_id": self.deal_id,
            "verdict": str(self.verdict),
            "target": self.target,
            "note": self.note,
        }


def judge(
    item: Deal | Any,
    outcome: Planned | Rejected,
    records: Sequence[DealRecord],
    work: WorkItem | None,
    mapping_hash: str,
) -> Judged:
    """What the run's triage would do with ``outcome`` given the deal's ledger rows and
    its invoice work item."""
    deal_id = outcome.deal_id if isinstance(outcome, Rejected) else outcome.draft.deal_id
    invoiced = routing.invoiced(records)
    if invoiced is not None:
        note = f"invoiced in {invoiced.target} as {invoiced.external_invoice_id}"
        if isinstance(item, Deal) and invoiced.revision != deal_fingerprint(item):
            note += "; changed since: the run records deal_changed_after_invoice"
        return Judged(deal_id, Verdict.INVOICED, invoiced.target, note)
    if isinstance(item, Deal) and work is not None:
        revisions = (full_fingerprint(item), deal_fingerprint(item))
        if rejected_before(work, revisions, mapping_hash):
            note = (
                f"{work.status} for this content and mapping (failure #{work.id}): "
                f"{work.last_error_message or ''}"
            )
            return Judged(deal_id, Verdict.KNOWN_FAILURE, work.payload.get("target"), note)
    if isinstance(outcome, Rejected):
        return Judged(deal_id, Verdict.REJECTED, outcome.target, "needs attention")
    target = outcome.draft.target
    elsewhere = routing.unresolved_elsewhere(records, target)
    if elsewhere:
        first = elsewhere[0]
        note = (
            f"routed to {target}, but an attempt in {first.target} is unresolved "
            f"({first.state}, reference {first.reference or deal_id}): the run looks it up "
            f"there first and adopts it or closes it; nothing is created in {target} this run"
        )
        return Judged(deal_id, Verdict.ROUTING, first.target, note)
    record = next((r for r in records if r.target == target), None)
    if record is not None and routing.unresolved(record):
        note = (
            f"an earlier attempt is {record.state}: looked up by reference "
            f"{record.reference or deal_id} first, adopted if found, else created with the "
            f"same idempotency key"
        )
        return Judged(deal_id, Verdict.ADOPT, target, note)
    if record is not None and record.state == DealState.REROUTED:
        note = f"moved away from {target} by `billsync deals reroute`; not created again here"
        return Judged(deal_id, Verdict.ROUTING, target, note)
    return Judged(deal_id, Verdict.NEW, target, "")


def failure_json(item: WorkItem) -> dict[str, Any]:
    payload = item.payload
    return {
        "id": item.id,
        "kind": item.kind,
        "deal_id": payload.get("deal_id"),
        "target": payload.get("target") or payload.get("provider"),
        "status": item.status,
        "error_class": item.last_error_class,
        "message": item.last_error_message,
    }


def counts(judged: Iterable[Judged]) -> dict[str, int]:
    found = {str(verdict): 0 for verdict in Verdict}
    for one in judged:
        found[str(one.verdict)] += 1
    return found
