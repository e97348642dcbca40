"""Take in payment facts (DESIGN.md run cycle step 5): webhook inbox first, then each
provider's feed since its cursor, applied to the ledger's invoice state.

Events arrive twice and out of order, so state only moves on facts: money is a row per
provider payment id (a duplicate is a no-op), amount paid is the sum of distinct rows,
and the invoice's status is derived from those sums plus the latest terminal fact
(void, uncollectible), never from a counter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from connectors.base import ConnectorError, PaymentFeed
from sync.canonical import DiscrepancyKind, PaymentEvent, PaymentKind, WebhookNotification
from sync.engine.failures import PAYMENT, FailureRecorder
from sync.engine.summary import RunSummary
from sync.engine.writeback import queue_writeback
from sync.ledger import Ledger
from sync.ledger.models import DealState, InboxEvent
from sync.ledger.models import PaymentKind as LedgerKind
from sync.logs import get_logger

log = get_logger("billsync.engine")

INBOX_BATCH = 200
# What a provider's parser raises on a payload it does not understand (a missing key, a
# wrong type, a value out of range); a ConnectorError is a vendor call that failed.
UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, OverflowError)
INBOX_CLAIM = timedelta(minutes=5)

# Money movements: canonical event kind -> ledger payment kind. Other kinds change only
# the status (void, uncollectible, payment failed, dispute opened without money moved).
MONEY: Mapping[PaymentKind, LedgerKind] = {
    PaymentKind.PAID: LedgerKind.PAYMENT,
    PaymentKind.PARTIALLY_PAID: LedgerKind.PAYMENT,
    PaymentKind.REFUNDED: LedgerKind.REFUND,
    PaymentKind.DISPUTED: LedgerKind.CHARGEBACK,
    PaymentKind.DISPUTE_CLOSED: LedgerKind.CHARGEBACK_REVERSAL,
    PaymentKind.CREDITED: LedgerKind.CREDIT,
}
TERMINAL_STATUS: Mapping[PaymentKind, str] = {
    PaymentKind.VOIDED: "void",
    PaymentKind.UNCOLLECTIBLE: "uncollectible",
}


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

        Applied events are marked done together at the end of each claimed batch (one
        write, not one per event). A crash before that leaves them claimed; they are
        applied again after the claim expires, which changes nothing: every payment is
        keyed by its provider id and every status change is idempotent.
        """
        seen: set[int] = set()
        while True:
            claimed = self.ledger.claim_inbox_events(batch, self.holder, claim_for=INBOX_CLAIM)
            if all(stored.id in seen for stored in claimed):
                return len(seen)  # only events that already failed in this drain
            seen.update(stored.id for stored in claimed)
            done: list[int] = []
            try:
                for index, stored in enumerate(claimed):
                    if stopping():
                        self.ledger.release_inbox_claims([e.id for e in claimed[index:]])
                        return len(seen)
                    if self._process(stored):
                        done.append(stored.id)
            finally:
                self.ledger.mark_inbox_done_many(done)
            if len(claimed) < batch:
                return len(seen)

    def _process(self, stored: InboxEvent) -> bool:
        """Apply one stored event; True when it is done, False when it was marked
        failed (to retry, or for an operator)."""
        feed = self.feeds.get(stored.provider)
        if feed is None or stored.provider in self.summary.stopped:
            self.ledger.mark_inbox_failed(
                stored.id, f"{stored.provider} is not enabled or stopped", retry=True
            )
            return False
        notification = WebhookNotification(
            provider=stored.provider,
            event_id=stored.event_id,
            event_type=str(stored.headers.get("event_type", "unknown")),
            payload=stored.body.decode("utf-8"),
            received_at=stored.received_at,
        )
        try:
            events = list(feed.resolve(notification))
        except ConnectorError as error:
            self.ledger.mark_inbox_failed(stored.id, error.message, retry=error.is_retryable)
            return False
        except UNREADABLE as error:
            # Signed, yet not what the parser expects: failed for an operator, so it
            # cannot block the inbox (or crash every run) by failing again.
            self._unreadable(stored.provider, stored.event_id, stored.id, error)
            return False
        for event in events:
            self.apply(event)
        return True

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
        last = None
        try:
            for checkpointed in feed.events_since(cursor):
                self.apply(checkpointed.item)
                last = checkpointed.cursor
                if self.summary.payments_applied % 200 == 0:
                    self.ledger.set_cursor(name, last)
        except ConnectorError as error:
            self.failures.failed(
                PAYMENT,
                f"{provider}:feed",
                {"provider": provider, "stage": "payments", "cursor": cursor},
                error,
                None,
            )
            self.summary.failures += 1
        # A feed may know a later position than its last event (QBO: the time of the
        # CDC query), so a quiet account does not age past the 30-day look-back.
        final = getattr(feed, "last_cursor", None) or last
        if final:
            self.ledger.set_cursor(name, str(final))

    def apply(self, event: PaymentEvent) -> None:
        """Apply one fact; safe to call again with the same event."""
        target = event.provider
        if self._is_payment_void(event):
            self._void_payment(event)
            return
        if event.invoice_external_id is None:
            self._unknown_invoice(event)
            return
        invoice = self.ledger.get_invoice(target, event.invoice_external_id)
        if invoice is None:
            # An invoice billsync did not create (the company bills other things too).
            log.debug("payment.not_ours", target=target, invoice=event.invoice_external_id)
            return
        changed = False
        kind = MONEY.get(event.kind)
        if kind is not None and event.amount > 0:
            changed = self.ledger.record_payment(
                provider=event.provider,
                provider_payment_id=event.provider_payment_id or event.event_id,
                invoice_target=target,
                invoice_external_id=invoice.external_id,
                kind=kind,
                amount=event.amount,
                currency=event.currency,
                occurred_at=event.occurred_at,
                raw={"event_id": event.event_id, "kind": str(event.kind)},
            )
        settled = self.ledger.get_invoice(target, invoice.external_id) or invoice
        status = self._status(invoice.status, event, settled.balance, settled.amount_paid)
        if status != invoice.status:
            self.ledger.upsert_invoice(
                target=target,
                external_id=invoice.external_id,
                currency=invoice.currency,
                total=invoice.total,
                status=status,
            )
            changed = True
        if event.kind == PaymentKind.PAYMENT_FAILED:
            changed = True  # no money moved, but the deal must show the failure
        if not changed:
            return
        self.summary.payments_applied += 1
        refreshed = self.ledger.get_invoice(target, invoice.external_id)
        if refreshed is None or refreshed.deal_id is None:
            return
        if refreshed.amount_paid > refreshed.total:
            recorded = self.ledger.record_discrepancy(
                DiscrepancyKind.OVERPAYMENT,
                refreshed.deal_id,
                target,
                expected=format(refreshed.total, "f"),
                actual=format(refreshed.amount_paid, "f"),
                details={"invoice": refreshed.external_id, "currency": refreshed.currency},
            )
            self.summary.discrepancies += int(recorded)
        self.ledger.set_deal_state(
            refreshed.deal_id,
            target,
            _deal_state(status, event, refreshed.balance, refreshed.amount_paid),
        )
        queue_writeback(
            self.ledger, refreshed.deal_id, target, self.now(), last_event=str(event.kind)
        )
        log.info(
            "payment.applied",
            deal_id=refreshed.deal_id,
            target=target,
            stage="payments",
            kind=str(event.kind),
            amount=format(event.amount, "f"),
            invoice=refreshed.external_id,
        )

    def _is_payment_void(self, event: PaymentEvent) -> bool:
        """A `voided` fact about a payment we recorded (QBO voided/deleted Payment), as
        opposed to the invoice's own void (which has no money row of that id)."""
        return (
            event.kind == PaymentKind.VOIDED
            and event.provider_payment_id is not None
            and self.ledger.known_payment(event.provider, event.provider_payment_id)
        )

    def _void_payment(self, event: PaymentEvent) -> None:
        assert event.provider_payment_id is not None
        voided = self.ledger.void_payments(event.provider, event.provider_payment_id)
        for row in voided:
            invoice = self.ledger.get_invoice(row.invoice_target, row.invoice_external_id)
            if invoice is None or invoice.deal_id is None:
                continue
            status = "open" if invoice.status == "paid" and invoice.balance > 0 else invoice.status
            if status != invoice.status:
                self.ledger.upsert_invoice(
                    target=invoice.target,
                    external_id=invoice.external_id,
                    currency=invoice.currency,
                    total=invoice.total,
                    status=status,
                )
            state = _deal_state(status, event, invoice.balance, invoice.amount_paid)
            if state == "voided":  # the payment, not the invoice, was voided
                state = "partially_paid" if invoice.amount_paid > 0 else str(DealState.INVOICED)
            self.ledger.set_deal_state(invoice.deal_id, invoice.target, state)
            queue_writeback(self.ledger, invoice.deal_id, invoice.target, self.now())
            self.summary.payments_applied += 1
            log.info(
                "payment.voided",
                deal_id=invoice.deal_id,
                target=invoice.target,
                stage="payments",
                payment=row.provider_payment_id,
                amount=format(row.amount, "f"),
            )

    def _status(self, current: str, event: PaymentEvent, balance: Decimal, paid: Decimal) -> str:
        """Status from facts: terminal events win; otherwise what the money says (an
        event's kind, paid or partially paid, is only the provider's hint)."""
        if current in ("void", "deleted"):
            return current  # terminal: a late payment event cannot reopen a voided invoice
        if event.kind in TERMINAL_STATUS:
            return TERMINAL_STATUS[event.kind]
        if current == "uncollectible":
            return current
        if balance <= 0 and paid > 0:
            return "paid"
        return "open"

    def _unknown_invoice(self, event: PaymentEvent) -> None:
        recorded = self.ledger.record_discrepancy(
            DiscrepancyKind.PAYMENT_FOR_UNKNOWN_INVOICE,
            None,
            event.provider,
            expected=None,
            actual=format(event.amount, "f"),
            details={
                "event": event.event_id,
                "payment": event.provider_payment_id,
                "currency": event.currency,
                "kind": str(event.kind),
                "raw": json.dumps({"occurred_at": event.occurred_at.isoformat()}),
            },
        )
        self.summary.discrepancies += int(recorded)


def _deal_state(status: str, event: PaymentEvent, balance: Decimal, paid: Decimal) -> str:
    """The deal's state for one target, from the invoice's settled facts."""
    if status in ("void", "deleted"):
        return "voided"
    if status == "uncollectible":
        return "uncollectible"
    if event.kind == PaymentKind.DISPUTED:
        return "disputed"
    if event.kind == PaymentKind.REFUNDED:
        return "refunded"
    if event.kind == PaymentKind.PAYMENT_FAILED:
        return "payment_failed"
    if status == "paid" or balance <= 0:
        return "paid"
    if paid > 0:
        return "partially_paid"
    return str(DealState.INVOICED)
