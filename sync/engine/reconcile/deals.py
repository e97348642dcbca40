"""The deal side: ``closed_won_not_invoiced`` and ``deal_lost_after_invoice``.

- Deals the ledger holds with no invoice and no work that will make one (ledger only).
- Won deals the pull has passed but the ledger never saw (deal source ↔ ledger, when the
  deal source can list won deal ids): e.g. a deal whose transaction committed with a
  revision stamp older than the watermark minus the overlap. Each is recorded and
  queued as an invoice work item without a draft, which the next run's retry stage
  reads from the source by id and invoices like any pulled deal; the row closes when
  the deal reaches the invoice stage (or the failure log takes it over).
- Invoiced deals that are no longer won in the source (moved to Closed Lost, reopened,
  deleted) while their invoice is live (when the source can read deal stages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from billsync.core.canonical import DiscrepancyKind
from billsync.core.protocols import ConnectorError, ListsWonDeals, ReadsDealStages
from billsync.sync.engine.failures import INVOICE
from billsync.sync.engine.reconcile.recorder import CHUNK, chunks
from billsync.sync.engine.reconcile.targets import GONE
from billsync.sync.ledger.models import WorkStatus

if TYPE_CHECKING:
    from billsync.sync.engine.reconcile.recorder import Reconciler

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
    unseen = [row.deal_id for row in rec.open_rows(kind) if row.target is None and row.deal_id]
    arrived = rec.reads.arrived(unseen, INVOICE)
    for row in rec.open_rows(kind):
        if row.deal_id is None:
            continue
        if row.target is None:
            if row.deal_id in arrived:
                rec.resolve(row.kind, row.deal_id, None, arrived[row.deal_id])
        elif (row.deal_id, row.target) not in holds:
            rec.resolve(
                row.kind, row.deal_id, row.target, "the deal is invoiced or its work is queued"
            )


def won_deals(rec: Reconciler) -> None:
    """Won deals at or before the pull's watermark that the ledger has no record of."""
    source = rec.source
    system = source.system
    if not isinstance(source, ListsWonDeals):
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
                        "note": "won before the pull's watermark (e.g. its change became "
                        "visible late), but billsync has no record of it; queued: the next "
                        "billsync run reads it by id and invoices it"
                    },
                )
                rec.ledger.enqueue(INVOICE, deal_id, {"deal_id": deal_id}, rec.now())
                rec.fixed("invoice_queued", deal_id, None, "the next run reads it and invoices it")
    except ConnectorError as error:
        rec.report.error(system, f"won deals not listed: {error}")


def lost_after_invoice(rec: Reconciler) -> None:
    """Invoiced deals (of the invoices read back this pass, and of open rows) that the
    source no longer holds as won, while their invoice is live."""
    kind = DiscrepancyKind.DEAL_LOST_AFTER_INVOICE
    source = rec.source
    if not isinstance(source, ReadsDealStages):
        rec.report.skipped.append(
            f"{source.system}: the deal source cannot read deal stages, so deals lost "
            "after they were invoiced were not looked for"
        )
        return
    if source.system in rec.stopped:
        return  # reported by won_deals
    for row in rec.open_rows(kind):
        if row.deal_id is None or row.target is None or row.deal_id in rec.read_deals:
            continue
        record = rec.ledger.invoice_for_deal(row.deal_id, row.target)
        if record is None or record.status in GONE:
            rec.resolve(kind, row.deal_id, row.target, "the invoice is void or deleted")
    try:
        for chunk in chunks(sorted(rec.read_deals), CHUNK):
            lost = source.not_won(chunk)
            for deal_id in chunk:
                target, invoice = rec.read_deals[deal_id]
                stage = lost.get(deal_id)
                if stage is None:
                    rec.resolve(kind, deal_id, target, "the deal is closed-won again")
                    continue
                rec.record(
                    kind,
                    deal_id,
                    target,
                    expected="Closed Won",
                    actual=stage,
                    details={
                        "invoice": invoice,
                        "note": "the deal was invoiced, then moved out of Closed Won; if "
                        "the sale is off, void or credit the invoice in the target, else "
                        "move the deal back",
                    },
                    refresh=True,
                )
    except ConnectorError as error:
        rec.report.error(source.system, f"deal stages not read: {error}")
