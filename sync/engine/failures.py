"""Failures become rows in the retry queue, with backoff, classified by what to do next.

- transient, rate_limited, conflict: retried by the retry stage with jittered
  exponential backoff (the vendor's Retry-After wins when longer) up to the attempt
  limit, then ``dead`` until an operator acts;
- invalid_data, not_found: ``dead`` at once — retrying cannot help until the deal
  (its content revision) or the mapping files (their digest) change, which re-arms
  the item by itself;
- auth: the connector is stopped for the run; the item is retried next run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.mappings.rejections import Rejection
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import WorkItem, WorkStatus

log = get_logger("billsync.engine")

INVOICE = "invoice"
WRITEBACK = "writeback"
PAYMENT = "payment"
PERMANENT = frozenset({ErrorClass.INVALID_DATA, ErrorClass.NOT_FOUND})
SETTLED = frozenset({WorkStatus.DEAD, WorkStatus.RESOLVED})


def rejected_before(item: WorkItem | None, revisions: Collection[str], mapping_hash: str) -> bool:
    """The deal failed permanently for this very content under this mapping, and is
    waiting (dead) or was closed by an operator (`failures resolve`): re-reading it
    changes nothing. A change to the deal (its revision) or to the mapping files (their
    digest) brings it back; so does an operator's `failures retry`."""
    return (
        item is not None
        and item.status in SETTLED
        and item.last_error_class in PERMANENT
        and item.revision in revisions
        and item.mapping_hash == mapping_hash
    )


@dataclass(frozen=True)
class RetryPolicy:
    base_s: int
    cap_s: int
    max_attempts: int

    def next_attempt(
        self,
        now: datetime,
        attempts: int,
        retry_after: timedelta | None = None,
        rng: Callable[[], float] = random.random,
    ) -> datetime:
        # "Equal jitter": half the exponential step fixed, half random, so retries of
        # many items spread out but none comes back almost at once.
        step = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        delay = timedelta(seconds=step / 2 + rng() * step / 2)  # money-ok: seconds
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        return now + delay


class FailureRecorder:
    """Writes failures to the work queue; closes items when the work succeeds."""

    def __init__(
        self,
        ledger: Ledger,
        policy: RetryPolicy,
        *,
        mapping_hash: str,
        run_id: str,
        holder: str,
        now: Callable[[], datetime],
    ) -> None:
        self.ledger = ledger
        self.policy = policy
        self.mapping_hash = mapping_hash
        self.run_id = run_id
        self.holder = holder
        self.now = now

    def rejected(
        self,
        deal_id: str,
        target: str | None,
        rejections: tuple[Rejection, ...],
        revision: str | None,
        *,
        deal_name: str | None = None,
    ) -> None:
        """A deal that cannot be invoiced as it is: needs attention until it changes."""
        message = "; ".join(r.message() for r in rejections)
        payload: dict[str, Any] = {
            "deal_id": deal_id,
            "deal_name": deal_name,
            "target": target,
            "stage": "validate",
            "problems": [{"field": r.field, "reason": r.reason, "fix": r.fix} for r in rejections],
        }
        held = self._held(INVOICE, deal_id)
        if held is not None:
            # A retry of a leased item (e.g. re-armed by a mapping change) that is still
            # invalid: back to dead until the deal or the mapping changes again.
            self.ledger.fail_work(
                held.id,
                str(ErrorClass.INVALID_DATA),
                "VALIDATION",
                message,
                self.now(),
                True,
                holder=self.holder,
            )
        else:
            self._record(
                INVOICE,
                deal_id,
                payload,
                ErrorClass.INVALID_DATA,
                "VALIDATION",
                message,
                revision,
                dead=True,
            )
        log.warning(
            "deal.rejected",
            deal_id=deal_id,
            target=target,
            stage="validate",
            error_class="invalid_data",
            code="VALIDATION",
            message=message,
        )

    def failed(
        self,
        kind: str,
        key: str,
        payload: dict[str, Any],
        error: ConnectorError,
        revision: str | None,
    ) -> bool:
        """Record a connector failure; returns True when it will be retried by itself."""
        held = self._held(kind, key)
        # A leased item's attempts were counted when it was leased; a first failure
        # counts as attempt one.
        attempts = held.attempts if held is not None else 1
        dead = error.error_class in PERMANENT or attempts >= self.policy.max_attempts
        if held is not None:
            due = self.policy.next_attempt(self.now(), attempts, error.retry_after)
            self.ledger.fail_work(
                held.id,
                str(error.error_class),
                error.code,
                error.message,
                due,
                dead,
                holder=self.holder,
            )
        else:
            self._record(
                kind,
                key,
                payload,
                error.error_class,
                error.code,
                error.message,
                revision,
                dead=dead,
                retry_after=error.retry_after,
            )
        log.warning(
            "work.failed",
            deal_id=payload.get("deal_id"),
            target=payload.get("target"),
            stage=payload.get("stage", kind),
            error_class=str(error.error_class),
            code=error.code,
            message=error.message,
            retry=not dead,
        )
        return not dead

    def succeeded(self, kind: str, key: str) -> None:
        """Close an open item for this key (the work finally succeeded)."""
        item = self.ledger.find_work(kind, key)
        if item is None:
            return
        if item.status in (WorkStatus.PENDING, WorkStatus.LEASED):
            self.ledger.complete_work(item.id)
        elif item.status == WorkStatus.DEAD:
            # Audited like an operator's resolve, with the run as the actor.
            self.ledger.resolve_work(item.id, f"run:{self.run_id}", "succeeded in a later run")

    def _held(self, kind: str, key: str) -> WorkItem | None:
        item = self.ledger.find_work(kind, key)
        if item is not None and item.status == WorkStatus.LEASED and item.leased_by == self.holder:
            return item
        return None

    def _record(
        self,
        kind: str,
        key: str,
        payload: dict[str, Any],
        error_class: ErrorClass,
        code: str | None,
        message: str,
        revision: str | None,
        *,
        dead: bool,
        retry_after: timedelta | None = None,
    ) -> None:
        now = self.now()
        due = self.policy.next_attempt(now, 1, retry_after)
        item = self.ledger.enqueue(
            kind, key, payload, due, revision=revision, mapping_hash=self.mapping_hash
        )
        if item.status in (WorkStatus.PENDING, WorkStatus.LEASED):
            self.ledger.fail_work(
                item.id, str(error_class), code, message, due, dead, count_attempt=True
            )
