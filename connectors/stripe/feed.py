"""`StripeFeed`: hints that an invoice's money changed, by webhook (`resolve`) or by
polling ``GET /v1/events`` since a cursor (`events_since`) to catch what webhooks missed;
and the money itself, read fresh (`read_invoice_money`, in `money`).

What each event means is in `events`. Polling reads forwards from the cursor's event
(``ending_before``, paged backwards so the oldest comes first) and yields each fact
with the cursor that is safe once it is recorded: only an event's last fact moves the
cursor past the event. The events list reaches back 30 days: a cursor older than that
is reported (``CURSOR_TOO_OLD``) so the engine reconciles the open invoices instead of
silently skipping what happened in between. With no cursor the whole window is read
(one list, reversed in memory: at most 30 days of money events).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from billsync.connectors.stripe.client import SYSTEM, StripeApi
from billsync.connectors.stripe.events import EVENT_TYPES, EventFacts
from billsync.connectors.stripe.money import InvoiceMoneyReader
from billsync.core.canonical import InvoiceMoney, PaymentEvent, WebhookNotification
from billsync.core.naming import named
from billsync.core.protocols import Checkpointed, ConnectorError, Cursor, ErrorClass

__all__ = ["EVENT_TYPES", "StripeFeed"]

Obj = dict[str, Any]

RETENTION = timedelta(days=30)
_MARGIN = timedelta(minutes=15)  # events near the edge may expire while we page


class StripeFeed:
    """`PaymentFeed` for Stripe."""

    def __init__(
        self, api: StripeApi, *, now: Callable[[], datetime] | None = None, name: str = "stripe"
    ) -> None:
        self._name = name  # the connection's name: every event and money read carries it
        self._api = api
        self._now = now or (lambda: datetime.now(UTC))
        self._facts = EventFacts(api, now=self._now)
        self.last_cursor: Cursor | None = None
        """After `events_since` is exhausted: the position past every event it read."""
        self._money = InvoiceMoneyReader(api)

    @property
    def provider(self) -> str:
        return self._name

    def read_invoice_money(self, external_ids: Sequence[str]) -> dict[str, InvoiceMoney]:
        """Each invoice's money read fresh from Stripe (calls per invoice: `money`)."""
        read = self._money.read(external_ids)
        return {key: named(money, self._name) for key, money in read.items()}

    def resolve(self, notification: WebhookNotification) -> list[PaymentEvent]:
        event = json.loads(notification.payload, parse_float=Decimal)
        return [named(hint, self._name) for hint in self._facts.facts(event)]

    def events_since(self, since: Cursor | None) -> Iterator[Checkpointed[PaymentEvent]]:
        """Events after the cursor, oldest first. The cursor is ``"<created>:<event id>"``
        (or ``"<created>:"``: everything from that second on)."""
        oldest = int((self._now() - RETENTION + _MARGIN).timestamp())
        created, event_id = _parse_cursor(since) if since else (oldest, "")
        if created < oldest:
            raise ConnectorError(
                system=SYSTEM,
                error_class=ErrorClass.NOT_FOUND,
                code="CURSOR_TOO_OLD",
                message=(
                    f"Stripe keeps events for 30 days and the stored cursor is from "
                    f"{datetime.fromtimestamp(created, UTC):%Y-%m-%d %H:%M} UTC: payments, "
                    "refunds and disputes in between cannot be polled. Reconcile the open "
                    "Stripe invoices (billsync reconcile) and restart the feed from now"
                ),
            )
        events = self._api.v1.events

        def request(params: dict[str, Any], options: dict[str, Any]) -> Any:
            return events.list(params=params, options=options)

        stream: Iterator[Obj]
        params: dict[str, Any]
        if event_id:
            params = {"types": list(EVENT_TYPES), "ending_before": event_id}
            stream = self._api.pages("event list", request, params, backwards=True)
        else:
            params = {"types": list(EVENT_TYPES), "created": {"gte": created}}
            stream = reversed(list(self._api.pages("event list", request, params)))
        previous = since or f"{created}:"
        self.last_cursor = since
        for event in stream:
            cursor = f"{event['created']}:{event['id']}"
            facts = [named(hint, self._name) for hint in self._facts.facts(event)]
            for position, fact in enumerate(facts, start=1):
                # Only the last fact of an event may move the cursor past the event.
                yield Checkpointed(fact, cursor if position == len(facts) else previous)
            previous = cursor
            # Past an event that gives no hint too (a draft's invoice.updated), once
            # the caller has taken everything before it: the next poll starts after it.
            self.last_cursor = cursor


def _parse_cursor(cursor: str) -> tuple[int, str]:
    created, _, event_id = cursor.partition(":")
    if not created.isdigit():
        raise ConnectorError(
            system=SYSTEM,
            error_class=ErrorClass.INVALID_DATA,
            code="BAD_CURSOR",
            message=f"stored Stripe cursor {cursor!r} is not '<created>:<event id>'; reset it",
        )
    return int(created), event_id
