"""The ledger numbers `/metrics` reports, read at scrape time in one short transaction.

They come from the ledger rather than from counters in the serving process because
the work is done elsewhere: invoices are created by `billsync run` (usually a cron
job in another container) and `billsync serve` may run several worker processes.
The ledger is the one place where every process's work is visible.

Scrapes come every few seconds, so each query is an aggregate the database answers
from an index (or from a small table) and returns a handful of rows; nothing is
scanned in Python. On SQLite:

- inbox lag: ``ix_inbox_status_id`` finds the open events; done events are skipped;
- queue depth: ``GROUP BY status`` over ``ix_work_items_status_next_attempt_at``
  (a covering index: the table itself is not read);
- open failures: the same index finds the open items, then their error class (and,
  per connection, the connection their payload names: the open items are few);
- invoices created: ``GROUP BY target`` over ``ix_invoices_deal_id_target``
  (covering);
- last run per outcome: ``GROUP BY outcome`` over ``runs``, one row per cycle
  (about 35,000 a year at a 15-minute schedule), a plain aggregate;
- failed attempts: ``ix_audit_action_id`` finds the ``work.failed`` rows (one per
  failed attempt, written with the failure), grouped by the class in their details.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from billsync.sync.ledger.base import Store
from billsync.sync.ledger.models import InboxStatus, WorkStatus
from billsync.sync.ledger.ops_reads import payload_connection
from billsync.sync.ledger.queue import WORK_FAILED
from billsync.sync.ledger.schema import audit, inbox, invoices, runs, work_items

_OPEN_INBOX = (InboxStatus.PENDING.value, InboxStatus.PROCESSING.value)
_OPEN_WORK = (WorkStatus.PENDING.value, WorkStatus.LEASED.value, WorkStatus.DEAD.value)


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    oldest_open_inbox_at: datetime | None
    """When the oldest pending or processing webhook event arrived (None: caught up)."""
    work_items_by_status: dict[str, int]
    """Every work-item status, 0 when none."""
    last_run_finished_at: dict[str, datetime]
    """Per run outcome that ever happened, when the latest such run finished."""
    invoices_created_by_target: dict[str, int]
    """Invoices billsync created (or adopted after a crash) per target."""
    open_failures_by_class: dict[str, int]
    """Work items whose last attempt failed and that are not closed, per error class."""
    failed_attempts_by_class: dict[str, int]
    """Every failed attempt ever recorded (audit rows ``work.failed``), per class."""
    open_failures_by_connection: dict[tuple[str, str], int] = field(default_factory=dict)
    """The open failures per (connection, error class), for items that name one."""


class MetricsReads(Store):
    def metrics_snapshot(self) -> MetricsSnapshot:
        """Everything `/metrics` derives from the ledger, read in one transaction.

        Invoices created: the invoice rows that name a deal. Only the invoicing stage
        writes deal_id (on create, or on adopting an invoice an earlier, crashed
        attempt created); payment and reconciliation updates keep it, invoices
        billed out of band have none, and invoice rows are never deleted (a voided
        invoice keeps its row). So the count only ever grows: a true counter, and
        it counts each invoice once however often the run that made it is retried.

        Failed attempts: the queue writes an audit row per failed attempt in the
        same transaction as the failure (``WorkQueue.fail_work``), and audit rows
        are never deleted, so their count per class is a true counter. Open
        failures are the gauge beside it: the pending, leased and dead items that
        carry an error class now (a work item's error is cleared when a retry
        succeeds or the key is enqueued afresh).
        """
        with self._read() as conn:
            oldest = conn.execute(
                sa.select(sa.func.min(inbox.c.received_at)).where(inbox.c.status.in_(_OPEN_INBOX))
            ).scalar_one()
            by_status = conn.execute(
                sa.select(work_items.c.status, sa.func.count()).group_by(work_items.c.status)
            ).all()
            last_runs = conn.execute(
                sa.select(runs.c.outcome, sa.func.max(runs.c.finished_at))
                .where(runs.c.outcome.is_not(None), runs.c.finished_at.is_not(None))
                .group_by(runs.c.outcome)
            ).all()
            created = conn.execute(
                sa.select(invoices.c.target, sa.func.count())
                .where(invoices.c.deal_id.is_not(None))
                .group_by(invoices.c.target)
            ).all()
            # Per connection and class in one query; the per-class figures are its sums
            # (a rejected deal's item names no connection: it counts under class only).
            connection = payload_connection()
            failing = conn.execute(
                sa.select(connection, work_items.c.last_error_class, sa.func.count())
                .where(
                    work_items.c.status.in_(_OPEN_WORK),
                    work_items.c.last_error_class.is_not(None),
                )
                .group_by(connection, work_items.c.last_error_class)
            ).all()
            error_class = audit.c.details["error_class"].as_string()
            attempts = conn.execute(
                sa.select(error_class, sa.func.count())
                .where(audit.c.action == WORK_FAILED)
                .group_by(error_class)
            ).all()
        depth = {status.value: 0 for status in WorkStatus}
        depth.update({str(status): int(n) for status, n in by_status})
        return MetricsSnapshot(
            oldest_open_inbox_at=oldest if isinstance(oldest, datetime) else None,
            work_items_by_status=depth,
            last_run_finished_at={str(outcome): at for outcome, at in last_runs},
            invoices_created_by_target={str(target): int(n) for target, n in created},
            open_failures_by_class=_per_class(failing),
            failed_attempts_by_class={str(cls): int(n) for cls, n in attempts if cls},
            open_failures_by_connection={
                (str(name), str(cls)): int(n) for name, cls, n in failing if name is not None
            },
        )


def _per_class(rows: Sequence[Any]) -> dict[str, int]:
    """(connection, class, count) rows summed per class."""
    found: dict[str, int] = {}
    for _connection, cls, n in rows:
        found[str(cls)] = found.get(str(cls), 0) + int(n)
    return found
