"""Take in money changes (DESIGN.md run cycle step 5): webhook inbox first, then each
provider's feed since its cursor.

Both only give hints (`PaymentEvent`s naming an invoice or a payment); `MoneySync`
re-reads the invoices they concern from the target and records what the target says,
so a duplicate, a late or an out-of-order event, or a forged amount cannot move money.
Hints are settled in batches: an inbox batch is marked done, and a feed's cursor stored,
only after its invoices were read and recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from billsync.core.canonical import PaymentEvent, WebhookNotification
from billsync.core.logs import get_logger
from billsync.core.protocols import (
    ConnectorError,
    Cursor,
    PaymentFeed,
    ReportsLastCursor,
)
from billsync.sync.engine.failures import PAYMENT, FailureRecorder
from billsync.sync.engine.money_sync import MoneySync
from billsync.sync.engine.summary import RunSummary
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import InboxEvent

log = get_logger("billsync.engine")

INBOX_BATCH = 200
# What a provider's parser raises on a payload it does not understand (a missing key, a
# wrong type, a value out of range); a ConnectorError is a vendor call that failed.
UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, OverflowError)
INBOX_CLAIM = timedelta(minutes=5)
POLL_CHUNK = 500
"""Hints settled per step of a feed poll; the cursor is stored after each step."""


def feed_cursor_name(provider: str) -> str:
    return f"{provider}.events"


@dataclass
class PaymentStage:
    ledger: Ledger
    feeds: Mapping[str, PaymentFeed]
    failures: FailureRecorder
    summary: RunSummary
    holder: str
    now: Callable[[], datetime]
    money: MoneySync = field(init=False)

    def __post_init__(self) -> None:
        self.money = MoneySync(self.ledger, self.summary, self.now)

    def run(self) -> None:
        self.drain_inbox()
        for provider, feed in self.feeds.items():
            if provider not in self.summary.stopped:
                self._poll(provider, feed)

    def drain_inbox(
        self, *, stopping: Callable[[], bool] = lambda: False, batch: int = INBOX_BATCH
    ) -> int:
        """Process stored webhook events (any provider) until the inbox is empty; returns
        how many were claimed.

        ``stopping`` is asked between events (the webhook server's worker at shutdown):
        events claimed but not yet processed go back to pending for the next start
        instead of waiting out their claim.

        A claimed batch is resolved into hints, its invoices are read and recorded, and
        then its events are marked done together (one write). A crash before that leaves
        them claimed; they are processed again after the claim expires, which changes
        nothing: recording a target's read twice is a no-op.
        """
        seen: set[int] = set()
        while True:
            claimed = self.ledger.claim_inbox_events(batch, self.holder, claim_for=INBOX_CLAIM)
            if all(stored.id in seen for stored in claimed):
                return len(seen)  # only events that already failed in this drain
            seen.update(stored.id for stored in claimed)
            resolved: dict[str, list[tuple[int, list[PaymentEvent]]]] = {}
            for index, stored in enumerate(claimed):
                if stopping():
                    self.ledger.release_inbox_claims([e.id for e in claimed[index:]])
                    self._settle_inbox(resolved)
                    return len(seen)
                hints = self._resolve(stored)
                if hints is not None:
                    resolved.setdefault(stored.provider, []).append((stored.id, hints))
            self._settle_inbox(resolved)
            if len(claimed) < batch:
                return len(seen)

    def _settle_inbox(self, resolved: dict[str, list[tuple[int, list[PaymentEvent]]]]) -> None:
        for provider, items in resolved.items():
            ids = [inbox_id for inbox_id, _ in items]
            try:
                self.money.settle(self.feeds[provider], [h for _, hs in items for h in hs])
            except ConnectorError as error:
                for inbox_id in ids:
                    self.ledger.mark_inbox_failed(inbox_id, error.message, retry=error.is_retryable)
                continue
            self.ledger.mark_inbox_done_many(ids)

    def _resolve(self, stored: InboxEvent) -> list[PaymentEvent] | None:
        """The hints of one stored event; None when it was marked failed (to retry, or
        for an operator)."""
        feed = self.feeds.get(stored.provider)
        if feed is None or stored.provider in self.summary.stopped:
            self.ledger.mark_inbox_failed(
                stored.id, f"{stored.provider} is not enabled or stopped", retry=True
            )
            return None
        notification = WebhookNotification(
            provider=stored.provider,
            event_id=stored.event_id,
            event_type=str(stored.headers.get("event_type", "unknown")),
            payload=stored.body.decode("utf-8"),
            received_at=stored.received_at,
        )
        try:
            return list(feed.resolve(notification))
        except ConnectorError as error:
            self.ledger.mark_inbox_failed(stored.id, error.message, retry=error.is_retryable)
            return None
        except UNREADABLE as error:
            # Signed, yet not what the parser expects: failed for an operator, so it
            # cannot block the inbox (or crash every run) by failing again.
            self._unreadable(stored.provider, stored.event_id, stored.id, error)
            return None

    def _unreadable(self, provider: str, event_id: str, inbox_id: int, error: Exception) -> None:
        message = (
            f"{provider} event {event_id} could not be read ({type(error).__name__}); it was "
            "stored but not applied: check it in the provider's dashboard, then reconcile"
        )
        log.error("inbox.event_unreadable", provider=provider, event_id=event_id, message=message)
        self.ledger.mark_inbox_failed(inbox_id, message, retry=False)

    def _poll(self, provider: str, feed: PaymentFeed) -> None:
        name = feed_cursor_name(provider)
        cursor = self.ledger.get_cursor(name)
        pending: list[PaymentEvent] = []
        last: Cursor | None = None
        try:
            for checkpointed in feed.events_since(cursor):
                pending.append(checkpointed.item)
                last = checkpointed.cursor
                if len(pending) >= POLL_CHUNK:
                    self.money.settle(feed, pending)
                    self.ledger.set_cursor(name, last)
                    pending = []
            self.money.settle(feed, pending)
        except ConnectorError as error:
            self.summary.stop_if_refused(provider, error, stage="payments")
            self.failures.failed(
                PAYMENT,
                f"{provider}:feed",
                {"provider": provider, "stage": "payments", "cursor": cursor},
                error,
                None,
            )
            self.summary.failures += 1
            return  # the cursor stays where the last settled chunk left it
        # A feed may know a later position than its last event (the time of its
        # change query), so a quiet account does not age past the feed's look-back.
        final = (feed.last_cursor if isinstance(feed, ReportsLastCursor) else None) or last
        if final:
            self.ledger.set_cursor(name, final)

    def refresh(self, provider: str, external_ids: list[str]) -> int:
        """Re-read these invoices from their target and record them (reconcile --fix)."""
        return self.money.refresh(self.feeds[provider], external_ids)
