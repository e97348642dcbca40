"""``writeback_stale``: invoiced deals whose latest money state is not on the deal, and
(with ``--fix``) the write-back queued again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from billsync.core.canonical import DiscrepancyKind
from billsync.sync.engine.failures import WRITEBACK
from billsync.sync.engine.reconcile.report import show
from billsync.sync.ledger.models import WorkStatus
from billsync.sync.ledger.reconcile_reads import InvoicedDeal

if TYPE_CHECKING:
    from billsync.sync.engine.reconcile.recorder import Reconciler


@dataclass(frozen=True)
class _Invoiced(InvoicedDeal):
    """An invoiced deal with its invoice and its write-back item, if any, as the
    write-back check judges it."""

    @classmethod
    def of(cls, facts: InvoicedDeal) -> _Invoiced:
        return cls(**vars(facts))

    def stale_reason(self, cutoff: datetime) -> str | None:
        """Why the deal may not show the latest money state, or None."""
        status, at = self.work_status, self.work_updated_at
        if status is None or at is None:
            return "never queued"
        if status == WorkStatus.DEAD:
            return f"failed and gave up: {self.work_error or 'no error recorded'}"
        if status in (WorkStatus.PENDING, WorkStatus.LEASED):
            if self.work_error:
                return f"failing, will retry: {self.work_error}"
            if at < cutoff:
                return f"queued since {at.isoformat()} and not written"
            return None
        if status == WorkStatus.DONE and self.invoice_updated_at > at:
            return (
                f"money state changed at {self.invoice_updated_at.isoformat()}, after the "
                f"last write-back at {at.isoformat()}"
            )
        return None  # done and current, or resolved by an operator


def check_writebacks(rec: Reconciler) -> None:
    kind = DiscrepancyKind.WRITEBACK_STALE
    cutoff = rec.now() - rec.writeback_grace
    holds: set[tuple[str, str]] = set()
    for facts in rec.reads.invoiced(WRITEBACK):
        row = _Invoiced.of(facts)
        key = (row.deal_id, row.target)
        if rec.was_queued(row.deal_id):
            holds.add(key)  # queued by this pass: neither stale nor written yet
            continue
        reason = row.stale_reason(cutoff)
        if reason is None:
            if row.work_status in (WorkStatus.PENDING, WorkStatus.LEASED) and rec.open_row(
                kind, row.deal_id, row.target
            ):
                holds.add(key)  # stale until written, however young the new attempt
            continue
        holds.add(key)
        rec.record(
            kind,
            row.deal_id,
            row.target,
            expected=f"{row.status}, paid {show(row.amount_paid, row.currency)}, "
            f"balance {show(row.balance, row.currency)} {row.currency}",
            actual=reason,
            details={"invoice": row.external_id, "work_item": row.work_status},
        )
        if rec.fix and row.work_status not in (WorkStatus.PENDING, WorkStatus.LEASED):
            rec.queue_writeback(row.deal_id, row.target)
            rec.fixed("writeback_queued", row.deal_id, row.target, f"was: {reason}")
    for open_row in rec.open_rows(kind):
        if open_row.deal_id is None or open_row.target is None:
            continue
        if (open_row.deal_id, open_row.target) not in holds:
            rec.resolve(
                open_row.kind,
                open_row.deal_id,
                open_row.target,
                "the deal shows the latest money state",
            )
