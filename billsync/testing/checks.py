"""Helpers the contract tests share, and that a harness or a connector's own tests may
use: a connector's parts, a drained payment feed, fresh deal ids, the checks of a
retried and of a refused call."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from decimal import Decimal

from billsync.core.canonical import Deal, InvoiceRef, PaymentEvent
from billsync.core.money_state import derive
from billsync.core.plugins import ConnectorParts
from billsync.core.protocols import (
    ConnectorError,
    Cursor,
    DealSource,
    ErrorClass,
    InvoiceTarget,
    PaymentFeed,
    ReadRejection,
    ReportsLastCursor,
    WebhookVerifier,
)

__all__ = [
    "assert_auth",
    "assert_retryable",
    "deal_key",
    "drain_feed",
    "feed_of",
    "named",
    "new_deal_id",
    "paid_in_read",
    "source_of",
    "target_of",
    "webhooks_of",
]

_deal_numbers = itertools.count(1)


def source_of(parts: ConnectorParts) -> DealSource:
    assert parts.source is not None, f"the connector provides {parts.provides()}, not a source"
    return parts.source


def target_of(parts: ConnectorParts) -> InvoiceTarget:
    assert parts.target is not None, f"the connector provides {parts.provides()}, not a target"
    return parts.target


def feed_of(parts: ConnectorParts) -> PaymentFeed:
    assert parts.feed is not None, f"the connector provides {parts.provides()}, not a feed"
    return parts.feed


def webhooks_of(parts: ConnectorParts) -> WebhookVerifier:
    assert parts.webhooks is not None, "no webhook verifier (is a webhook secret configured?)"
    return parts.webhooks


def drain_feed(feed: PaymentFeed, since: Cursor | None) -> tuple[list[PaymentEvent], Cursor | None]:
    """Read the feed to the end; the events and the cursor the engine would store (the
    last item's, or the feed's ``last_cursor`` when it reports one: quiet periods move
    it)."""
    events: list[PaymentEvent] = []
    last = since
    for checkpointed in feed.events_since(since):
        assert isinstance(checkpointed.cursor, str) and checkpointed.cursor
        events.append(checkpointed.item)
        last = checkpointed.cursor
    reported = feed.last_cursor if isinstance(feed, ReportsLastCursor) else None
    return events, reported or last


def new_deal_id() -> str:
    """A fresh Salesforce-shaped deal id (≤ 21 characters: fits QBO's DocNumber)."""
    return f"006CT{next(_deal_numbers):010d}AAA"


def deal_key(item: Deal | ReadRejection) -> str:
    """The deal id of a pulled item, read or rejected."""
    return item.id if isinstance(item, Deal) else item.deal_id


def named(events: Iterable[PaymentEvent], invoice: InvoiceRef) -> list[PaymentEvent]:
    """The hints that name the invoice (events say what changed; the read says how)."""
    return [e for e in events if e.invoice_external_id == invoice.external_id]


def paid_in_read(feed: PaymentFeed, invoice: InvoiceRef) -> Decimal:
    """Money applied to the invoice as the target reads it now (one row per fact)."""
    read = feed.read_invoice_money([invoice.external_id])[invoice.external_id]
    state = derive(
        currency=read.currency,
        document_status=read.status,
        net=read.net,
        tax=read.tax,
        total=read.total,
        facts=read.facts,
    )
    assert state.balance_due == (read.reported_balance or 0), "the facts explain the balance"
    return state.paid


def assert_retryable(error: ConnectorError, sleeps: list[float], call: str = "pull") -> None:
    """A server error surfaced after bounded in-call retries, as retryable."""
    assert error.is_retryable, f"{call}: {error!r} should be transient or rate_limited"
    assert error.message and error.system
    assert sleeps, f"{call}: the connector gave up without retrying in-call"
    assert len(sleeps) < 10, f"{call}: {len(sleeps)} back-offs: retries must be bounded"


def assert_auth(error: ConnectorError, sleeps: list[float]) -> None:
    """Refused credentials are ``auth``, raised without a retry."""
    assert error.error_class is ErrorClass.AUTH, repr(error)
    assert not error.is_retryable
    assert sleeps == [], "bad credentials must not be retried (it only hammers the provider)"
