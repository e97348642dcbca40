"""Payment gaps: money the target applied to an invoice that the ledger never recorded,
and (with ``--fix``) catching it up from the target's feed."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from connectors.base import ConnectorError
from sync.canonical import InvoiceRef
from sync.engine.reconcile.capabilities import InvoicePaymentReader
from sync.engine.reconcile.report import PaymentGap
from sync.ledger import Ledger
from sync.ledger.models import InvoiceRecord, PaymentKind

if TYPE_CHECKING:
    from sync.engine.reconcile.recorder import Reconciler


def check_settled(
    rec: Reconciler, target: str, invoice: InvoiceRecord, ref: InvoiceRef, deal_id: str
) -> None:
    """Money the target applied to the invoice that the ledger never recorded.

    Compared as "settled" (total − balance) on both sides: QBO reports no amount
    paid, only a balance that credit memos lower too. Refunds and disputes move
    money on the charge or a refund receipt, not the invoice's balance (Stripe and
    QBO alike), so the ledger side counts payments and credits before refunds.
    """
    if ref.balance is not None:
        target_settled = ref.total - ref.balance
    else:
        target_settled = ref.amount_paid or Decimal(0)
    if target_settled <= invoice.total - invoice.balance:
        return
    ledger_settled = gross_settled(rec.ledger, target, invoice)
    if target_settled <= ledger_settled:
        return
    fixed, detail = _catch_up(rec, target, invoice, deal_id, target_settled)
    rec.report.payment_gaps.append(
        PaymentGap(
            target=target,
            invoice=invoice.external_id,
            deal_id=deal_id,
            currency=invoice.currency,
            ledger_settled=ledger_settled,
            target_settled=target_settled,
            fixed=fixed,
            detail=detail,
        )
    )


def gross_settled(ledger: Ledger, target: str, invoice: InvoiceRecord) -> Decimal:
    """Payments and credits the ledger holds for the invoice, before refunds."""
    rows = ledger.payments_for_invoice(target, invoice.external_id)
    counted = (PaymentKind.PAYMENT.value, PaymentKind.CREDIT.value)
    live = (row.amount for row in rows if row.kind in counted and row.voided_at is None)
    return sum(live, Decimal(0))


def _catch_up(
    rec: Reconciler, target: str, invoice: InvoiceRecord, deal_id: str, target_settled: Decimal
) -> tuple[bool, str]:
    """Read the invoice's payments from its feed and apply them like the payment
    stage does (same provider payment ids, so a later webhook or poll of the same
    payment is a no-op).

    Why not rewind the feed cursor: cursors are opaque to the engine, QBO's feed
    reads "no cursor" as "from now" (it would catch nothing), both feeds reach back
    only 30 days, and the ledger cannot store "no cursor". A work item for the
    payment stage would need the same per-invoice read to do anything, so the read
    is done here, once, under the run lease.
    """
    if not rec.fix:
        return False, "run billsync reconcile --fix to read its payments from the target"
    feed = rec.feeds.get(target)
    if not isinstance(feed, InvoicePaymentReader) or rec.apply_payment is None:
        return False, (
            f"the {target} feed cannot read one invoice's payments; the next "
            "webhook or poll that names them will apply them"
        )
    try:
        events = feed.payments_for_invoice(invoice.external_id)
    except ConnectorError as error:
        rec.report.error(target, f"payments of {invoice.external_id}: {error}")
        return False, f"reading its payments failed: {error.message}"
    for event in events:
        rec.apply_payment(event)
    rec.queued(deal_id)  # apply queued the deal's write-back
    after = rec.ledger.get_invoice(target, invoice.external_id)
    settled = gross_settled(rec.ledger, target, after) if after is not None else Decimal(0)
    rec.fixed(
        "payments_applied",
        deal_id,
        target,
        f"{len(events)} payment facts read for invoice {invoice.external_id}",
    )
    if settled >= target_settled:
        return True, f"caught up from {len(events)} payment facts"
    return False, f"still short after applying {len(events)} payment facts"
