"""One pass's inputs and what it has recorded so far; the limits every check shares.

Every check records and resolves through `Reconciler`, which keeps the rule that a
discrepancy is one open row per (kind, deal, target) until a check that looked finds
it no longer holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

from pydantic import ValidationError

from billsync.core.canonical import DiscrepancyKind
from billsync.core.logs import get_logger
from billsync.core.protocols import Cursor, DealSource, InvoiceTarget, PaymentFeed
from billsync.sync.engine.reconcile.report import Fixed, Key, ReconcileReport, canonical
from billsync.sync.engine.summary import RunSummary
from billsync.sync.engine.writeback import queue_writeback
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import Discrepancy as DiscrepancyRow
from billsync.sync.ledger.reconcile_reads import ReconcileReads

log = get_logger("billsync.engine")

ACTOR = "reconcile"
DEFAULT_LIMIT = 500
"""Invoices read back per target per pass; the next pass continues where this stopped."""
WRITEBACK_GRACE = timedelta(hours=1)
"""A queued write-back younger than this is on its way, not stale (webhooks queue
write-backs between runs)."""
CHUNK = 100  # ids per batched read, ledger query or heartbeat

T = TypeVar("T")


def _noop() -> None:
    return None


@dataclass
class Reconciler:
    """One reconciliation pass (build one per pass; `run.run_pass` fills ``report``)."""

    ledger: Ledger
    source: DealSource
    targets: Mapping[str, InvoiceTarget]
    feeds: Mapping[str, PaymentFeed]
    now: Callable[[], datetime]
    fix: bool = False
    summary: RunSummary | None = None
    deals_cursor: Cursor | None = None
    """The pull's watermark: won deals at or before it must be known to the ledger."""
    limit: int = DEFAULT_LIMIT
    writeback_grace: timedelta = WRITEBACK_GRACE
    heartbeat: Callable[[], None] = _noop
    """Called between chunks of vendor reads (the cycle renews its lease here)."""
    report: ReconcileReport = field(default_factory=ReconcileReport)
    reads: ReconcileReads = field(init=False, repr=False)
    _open: dict[Key, DiscrepancyRow] = field(init=False, repr=False, default_factory=dict)
    _queued: set[str] = field(init=False, repr=False, default_factory=set)
    read_deals: dict[str, tuple[str, str]] = field(init=False, repr=False, default_factory=dict)
    """Deals whose live invoices this pass read back: deal -> (target, invoice); their
    stage in the source is checked (``deal_lost_after_invoice``)."""

    def begin(self) -> None:
        """Load the open discrepancies and open the ledger reads; first thing in a pass."""
        self._open = {
            (row.kind, row.deal_id, row.target): row for row in self.ledger.open_discrepancies()
        }
        self.reads = ReconcileReads(self.ledger.engine)

    # --- recording ---------------------------------------------------------------

    def open_row(self, kind: str, deal_id: str | None, target: str | None) -> DiscrepancyRow | None:
        return self._open.get((kind, deal_id, target))

    def open_rows(self, kind: str, target: str | None = None) -> list[DiscrepancyRow]:
        return [
            row
            for (k, _, t), row in self._open.items()
            if k == kind and (target is None or t == target)
        ]

    def record(
        self,
        kind: DiscrepancyKind,
        deal_id: str | None,
        target: str | None,
        expected: str | None,
        actual: str | None,
        details: dict[str, Any],
        *,
        refresh: bool = False,
    ) -> None:
        """Open a row, unless one is open; with ``refresh``, an open row whose
        expected/actual changed is updated to show them (its acknowledgement dropped)."""
        opened = self.open_row(kind, deal_id, target)
        if opened is not None:
            if refresh and self.ledger.refresh_discrepancy(
                kind, deal_id, target, expected, actual, details
            ):
                self._open[(kind, deal_id, target)] = replace(
                    opened, expected=expected, actual=actual, details=details
                )
            return
        if not self.ledger.record_discrepancy(kind, deal_id, target, expected, actual, details):
            return
        self.report.recorded += 1
        if self.summary is not None:
            self.summary.discrepancies += 1
        self._open[(kind, deal_id, target)] = DiscrepancyRow(
            id=0,
            kind=kind,
            deal_id=deal_id,
            target=target,
            expected=expected,
            actual=actual,
            details=details,
            detected_at=self.now(),
            resolved_at=None,
        )
        log.warning(
            "discrepancy.recorded",
            kind=str(kind),
            deal_id=deal_id,
            target=target,
            stage="reconcile",
            expected=expected,
            actual=actual,
        )

    def resolve(self, kind: str, deal_id: str | None, target: str | None, note: str) -> None:
        if self._open.pop((kind, deal_id, target), None) is None:
            return
        if self.ledger.resolve_discrepancy(kind, deal_id, target, actor=ACTOR, note=note):
            self.report.resolved.append((kind, deal_id, target))
            log.info(
                "discrepancy.resolved",
                kind=kind,
                deal_id=deal_id,
                target=target,
                stage="reconcile",
                note=note,
            )

    def queue_writeback(self, deal_id: str, target: str) -> None:
        queue_writeback(self.ledger, deal_id, target, self.now())
        self.queued(deal_id)

    def queued(self, deal_id: str) -> None:
        """This pass queued the deal's write-back: it is on its way, not stale."""
        self._queued.add(deal_id)

    def was_queued(self, deal_id: str) -> bool:
        return deal_id in self._queued

    def fixed(self, action: str, deal_id: str | None, target: str | None, detail: str) -> None:
        self.report.fixed.append(Fixed(action, deal_id, target, detail))

    # --- report ------------------------------------------------------------------

    def collect_open(self) -> None:
        for row in self.ledger.open_discrepancies():
            try:
                self.report.open.append(canonical(row))
            except ValidationError as exc:
                self.report.error("ledger", f"discrepancy {row.id} cannot be shown: {exc}")

    @property
    def stopped(self) -> Mapping[str, str]:
        """Connectors stopped earlier in this run (or by this pass)."""
        return {} if self.summary is None else self.summary.stopped


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
