"""Which of our invoices a pass reads back from a target, and reading them.

Every invoice with an open discrepancy of a watched kind is read, then a bounded share
of the rest in rotation (the position is a ledger cursor), so successive passes cover
every invoice without one pass reading them all. A target that reads many invoices per
call (``ReadsInvoicesInBatch``) is asked in chunks; any other one invoice at a time. The
money of every invoice read is read too, in chunks, through the target's payment feed
(`PaymentFeed.read_invoice_money`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from billsync.core.canonical import DiscrepancyKind, InvoiceMoney, InvoiceRef
from billsync.core.protocols import (
    ConnectorError,
    ErrorClass,
    InvoiceTarget,
    PaymentFeed,
    ReadsInvoicesInBatch,
)
from billsync.sync.engine.reconcile.recorder import CHUNK, chunks
from billsync.sync.ledger.models import InvoiceRecord

if TYPE_CHECKING:
    from billsync.sync.engine.reconcile.recorder import Reconciler

WATCHED = (
    DiscrepancyKind.INVOICE_MISSING_IN_TARGET,
    DiscrepancyKind.INVOICE_VOIDED_OUT_OF_BAND,
    DiscrepancyKind.INVOICE_TOTAL_MISMATCH,
    DiscrepancyKind.DUPLICATE_INVOICE_FOR_DEAL,
    DiscrepancyKind.INVOICE_MONEY_MISMATCH,
    DiscrepancyKind.TARGET_FIGURES_UNEXPLAINED,
    DiscrepancyKind.DEAL_LOST_AFTER_INVOICE,
)
"""Kinds whose invoices are read back every pass, outside the rotation, so they close
as soon as they stop holding."""

Outcome = InvoiceRef | ConnectorError
MoneyOutcome = InvoiceMoney | ConnectorError | None


def candidates(rec: Reconciler, target: str) -> list[InvoiceRecord]:
    watched: dict[str, InvoiceRecord] = {}
    for kind in WATCHED:
        for row in rec.open_rows(kind, target):
            invoice = row.deal_id and rec.ledger.invoice_for_deal(row.deal_id, target)
            if invoice:
                watched[invoice.external_id] = invoice
    budget = max(rec.limit - len(watched), 0)
    scanned = [i for i in _rotate(rec, target, budget) if i.external_id not in watched]
    return [*watched.values(), *scanned]


def _rotate(rec: Reconciler, target: str, budget: int) -> list[InvoiceRecord]:
    """Our invoices in external-id order, continuing after where the last pass
    stopped and wrapping around, so successive passes cover every invoice."""
    if budget == 0:
        return []
    name = f"reconcile.{target}.position"
    start = rec.ledger.get_cursor(name) or ""
    picked = rec.reads.invoices(target, after=start, limit=budget)
    if len(picked) == budget:
        position = picked[-1].external_id
    elif not start:
        position = ""
    else:
        head = rec.reads.invoices(target, after="", limit=budget - len(picked))
        head = [i for i in head if i.external_id <= start]
        picked += head
        position = head[-1].external_id if head and len(picked) == budget else ""
    rec.ledger.set_cursor(name, position)
    return picked


def outcomes(
    connector: InvoiceTarget,
    feed: PaymentFeed | None,
    target: str,
    invoices: Sequence[InvoiceRecord],
) -> Iterator[tuple[InvoiceRecord, Outcome, MoneyOutcome]]:
    """Each invoice with what the target says about it (the invoice, or the error) and
    its money read (None: no feed to read it with, or the target no longer has it).
    Both are read a chunk at a time: money always batched, invoices batched where the
    target can."""
    for chunk in chunks(invoices, CHUNK):
        ids = [i.external_id for i in chunk]
        money = _money(feed, ids)
        refs: Mapping[str, Outcome] | None = None
        if isinstance(connector, ReadsInvoicesInBatch):
            try:
                refs = connector.fetch_invoices(ids)
            except ConnectorError as error:
                refs = {external_id: error for external_id in ids}
        for invoice in chunk:
            if refs is not None:
                ref = refs.get(invoice.external_id) or _no_answer(target)
            else:
                try:
                    ref = connector.fetch_invoice(invoice.external_id)
                except ConnectorError as error:
                    ref = error
            yield invoice, ref, money.get(invoice.external_id)


def _money(feed: PaymentFeed | None, ids: list[str]) -> Mapping[str, MoneyOutcome]:
    if feed is None:
        return {}
    try:
        return feed.read_invoice_money(ids)
    except ConnectorError as error:
        return dict.fromkeys(ids, error)


def _no_answer(target: str) -> ConnectorError:
    return ConnectorError(
        system=target,
        error_class=ErrorClass.TRANSIENT,
        code="NO_OUTCOME",
        message="the batched read returned nothing for this invoice; it is read again next pass",
    )
