"""Close discrepancies the run stages recorded once the ledger shows they no longer
hold: an overpayment refunded, an unknown payment later applied, a changed deal
invoiced at its new content. Ledger only, no vendor call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billsync.core.canonical import DiscrepancyKind

if TYPE_CHECKING:
    from billsync.sync.engine.reconcile.recorder import Reconciler


def close_recorded_by_stages(rec: Reconciler) -> None:
    for row in rec.open_rows(DiscrepancyKind.OVERPAYMENT):
        if row.deal_id is None or row.target is None:
            continue
        invoice = rec.ledger.invoice_for_deal(row.deal_id, row.target)
        if invoice is None or invoice.amount_paid <= invoice.total:
            rec.resolve(
                row.kind, row.deal_id, row.target, "amount paid no longer exceeds the total"
            )
    for row in rec.open_rows(DiscrepancyKind.PAYMENT_FOR_UNKNOWN_INVOICE):
        payment = row.details.get("payment")
        if (
            row.target
            and payment
            and rec.reads.applied_since(row.target, str(payment), row.detected_at)
        ):
            rec.resolve(
                row.kind, row.deal_id, row.target, f"payment {payment} applied to an invoice"
            )
    for row in rec.open_rows(DiscrepancyKind.DEAL_CHANGED_AFTER_INVOICE):
        if row.deal_id is None or row.target is None:
            continue
        record = rec.ledger.get_deal(row.deal_id, row.target)
        if record is None or record.external_invoice_id is None:
            rec.resolve(row.kind, row.deal_id, row.target, "the deal has no invoice any more")
        elif record.revision == row.details.get("revision", row.actual):
            # details["revision"]: the content hash when it was found (rows recorded
            # before it was kept there hold the hash in `actual`)
            rec.resolve(row.kind, row.deal_id, row.target, "the invoice matches the deal's content")
