"""``closed_won_not_invoiced``: won deals nothing will invoice.

Two halves: deals the ledger holds with no invoice and no work that will make one
(ledger only), and won deals the pull has passed but the ledger never saw (Salesforce
↔ ledger, when the deal source can list won deal ids).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.base import ConnectorError
from sync.canonical import DiscrepancyKind
from sync.engine.failures import INVOICE
from sync.engine.reconcile.capabilities import WonDealLister
from sync.engine.reconcile.recorder import CHUNK, chunks
from sync.ledger.models import WorkStatus

if TYPE_CHECKING:
    from sync.engine.reconcile.recorder import Reconciler

ACCOUNTED = frozenset(
    status.value
    for status in (WorkStatus.PENDING, WorkStatus.LEASED, WorkStatus.DEAD, WorkStatus.RESOLVED)
)
"""Work-item statuses that account for a deal not being invoiced: queued, failing
(shown by `billsync failures`), or closed by an operator."""


def unbilled_in_ledger(rec: Reconciler) -> None:
    """Deals the ledger holds without an invoice in any target, and without an open
    or operator-closed invoice work item: nothing will invoice them."""
    kind = DiscrepancyKind.CLOSED_WON_NOT_INVOICED
    holds: set[tuple[str, str]] = set()
    for record, work_status in rec.reads.unbilled(INVOICE):
        if work_status in ACCOUNTED:
            continue
        holds.add((record.deal_id, record.target))
        note = (
            "an intent was recorded but a run stopped before its outcome; the next run "
            "that reads the deal looks it up in the target before creating"
            if record.state == "invoicing"
            else "the deal has no invoice and no work item will retry it"
        )
        rec.record(
            kind,
            record.deal_id,
            record.target,
            expected="invoiced",
            actual=record.state,
            details={
                "note": note,
                "state": record.state,
                "intent_at": record.intent_at.isoformat(),
                "last_error": record.last_error,
                "work_item": work_status,
            },
        )
    unseen = [row for row in rec.open_rows(kind) if row.target is None and row.deal_id]
    seen = rec.reads.seen([row.deal_id for row in unseen if row.deal_id], INVOICE)
    for row in rec.open_rows(kind):
        if row.deal_id is None:
            continue
        if row.target is None:
            if row.deal_id in seen:
                rec.resolve(row.kind, row.deal_id, None, "the deal has reached billsync")
        elif (row.deal_id, row.target) not in holds:
            rec.resolve(
                row.kind, row.deal_id, row.target, "the deal is invoiced or its work is queued"
            )


def won_deals(rec: Reconciler) -> None:
    """Won deals at or before the pull's watermark that the ledger has no record of."""
    source = rec.source
    system = source.system
    if not isinstance(source, WonDealLister):
        rec.report.skipped.append(
            f"{system}: the deal source cannot list won deal ids, so won deals that "
            "billsync never read were not looked for"
        )
        return
    if rec.deals_cursor is None:
        rec.report.skipped.append(f"{system}: no deals pulled yet; nothing to compare")
        return
    if system in rec.stopped:
        rec.report.error(system, f"not checked: stopped earlier in this run ({system})")
        return
    try:
        for chunk in chunks(source.won_deal_ids(rec.deals_cursor), CHUNK):
            seen = rec.reads.seen(chunk, INVOICE)
            for deal_id in chunk:
                if deal_id in seen:
                    continue
                rec.record(
                    DiscrepancyKind.CLOSED_WON_NOT_INVOICED,
                    deal_id,
                    None,
                    expected="invoiced",
                    actual="never read by billsync",
                    details={
                        "note": "won before the pull's watermark, but billsync has no "
                        "record of it; check the deal's stage history and the pull filter"
                    },
                )
    except ConnectorError as error:
        rec.report.error(system, f"won deals not listed: {error}")
