"""`QboPaymentFeed`: money facts from webhook notifications and from CDC catch-up.

Intuit notifications carry ids only: `resolve` fetches the Payment (or Invoice) and
turns it into events (`events` explains the rules). `events_since` polls Change Data
Capture for Invoice, Payment and CreditMemo from the stored cursor.

CDC has no end bound, reaches back at most 30 days and returns at most 1,000 objects a
call. So each window asks "everything since X": if the answer holds fewer than 1,000
objects it is complete up to the response's ``time``; if it hit the cap, each entity is
asked alone, and the window is complete only up to the earliest "last object time"
among the entities that hit the cap. Objects are yielded oldest first, each event with
its object's LastUpdatedTime as the cursor (``changedSince`` is inclusive, so a crash
re-reads that instant and the ledger dedupes the repeats). Windows repeat until caught
up. A cursor older than the 30-day lookback is a gap: ConnectorError ``CURSOR_TOO_OLD``
— a full reconcile of open invoices is needed instead.

A poll that finds nothing yields nothing, yet the cursor must move or it would age
past 30 days: after the iterator is exhausted, `last_cursor` is the position to store
(the engine saves it when it differs from the cursor it passed in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from billsync.connectors.quickbooks.catalog import QboCatalog
from billsync.connectors.quickbooks.client import SYSTEM, QboClient
from billsync.connectors.quickbooks.convert import parse_time
from billsync.connectors.quickbooks.events import (
    credit_memo_events,
    deleted_credit_memo_events,
    deleted_invoice_events,
    deleted_payment_events,
    invoice_events,
    invoice_hint,
    payment_events,
)
from billsync.connectors.quickbooks.money import read_invoice_money
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.connectors.quickbooks.webhooks import NotificationFacts, notification_facts
from billsync.core.canonical import InvoiceMoney, PaymentEvent, WebhookNotification
from billsync.core.logs import get_logger
from billsync.core.protocols import Checkpointed, ConnectorError, Cursor, ErrorClass

__all__ = ["CDC_ENTITIES", "LOOKBACK", "QboPaymentFeed", "format_cursor"]

log = get_logger("billsync.quickbooks.feed")
Clock = Callable[[], datetime]
CDC_ENTITIES = ("Invoice", "Payment", "CreditMemo")
LOOKBACK = timedelta(days=30)
SAFETY = timedelta(minutes=10)  # clock skew between us and Intuit at the 30-day edge
CDC_CAP = 1000
MAX_WINDOWS = 100


def format_cursor(moment: datetime) -> Cursor:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class _Changed:
    at: datetime
    entity: str
    record: Mapping[str, Any]

    @property
    def deleted(self) -> bool:
        return self.record.get("status") == "Deleted"


class QboPaymentFeed:
    """Implements ``billsync.core.protocols.PaymentFeed`` for one QuickBooks company."""

    provider = "quickbooks"

    def __init__(
        self, client: QboClient, settings: QuickBooksSettings, catalog: QboCatalog, *, clock: Clock
    ) -> None:
        self._client = client
        self._settings = settings
        self._catalog = catalog
        self._clock = clock
        self.last_cursor: Cursor | None = None

    # --- reads --------------------------------------------------------------------

    def read_invoice_money(self, external_ids: Sequence[str]) -> Mapping[str, InvoiceMoney]:
        return read_invoice_money(self._client, self._catalog, external_ids)

    # --- webhooks ----------------------------------------------------------------

    def resolve(self, notification: WebhookNotification) -> list[PaymentEvent]:
        """Hints for one notification. An Invoice is named without a read (the engine
        reads it anyway); a Payment or CreditMemo is read for the documents it links.
        Creations of invoices (ours are recorded when made) and e-mails are no hints."""
        facts = notification_facts(notification)
        at = facts.occurred_at
        if facts.entity == "Payment":
            payment = None if facts.operation == "Delete" else self._read("Payment", facts)
            if payment is None:  # a deleted object is an id and nothing else
                return deleted_payment_events(facts.entity_id, at, self._home())
            return payment_events(payment, self._catalog.currency_of(payment))
        if facts.entity == "CreditMemo":
            memo = None if facts.operation == "Delete" else self._read("CreditMemo", facts)
            if memo is None:
                return deleted_credit_memo_events(facts.entity_id, at, self._home())
            return credit_memo_events(memo, self._catalog.currency_of(memo))
        if facts.entity == "Invoice":
            if facts.operation == "Delete":
                return deleted_invoice_events(facts.entity_id, at, self._home())
            if facts.operation in ("Update", "Void", "Merge"):
                return invoice_hint(facts.entity_id, facts.operation, at, self._home())
        return []  # customers, items, invoice creations and e-mails

    def _home(self) -> str:
        return self._catalog.home_currency

    def _read(self, entity: str, facts: NotificationFacts) -> dict[str, Any] | None:
        try:
            return self._client.read(entity, facts.entity_id)
        except ConnectorError as exc:
            if exc.error_class is ErrorClass.NOT_FOUND:
                return None
            raise

    # --- CDC catch-up ------------------------------------------------------------

    def events_since(self, since: Cursor | None) -> Iterator[Checkpointed[PaymentEvent]]:
        now = self._clock()
        start = self._parse_cursor(since) if since else now
        if start < now - LOOKBACK + SAFETY:
            raise self._too_old(since or "")
        overlap = timedelta(seconds=self._settings.cdc_overlap_s)
        position = max(start - overlap, now - LOOKBACK + SAFETY)
        self.last_cursor = since or format_cursor(now)
        for _ in range(MAX_WINDOWS):
            changed, covered, complete = self._window(position)
            yield from self._checkpointed(changed)
            self.last_cursor = format_cursor(max(covered, start))
            if complete:
                return
            position = covered
        log.warning("quickbooks.cdc_windows_exhausted", cursor=self.last_cursor)

    def _checkpointed(self, changed: list[_Changed]) -> Iterator[Checkpointed[PaymentEvent]]:
        for item in changed:
            cursor = format_cursor(item.at)
            for event in self._events(item):
                yield Checkpointed(event, cursor)

    def _events(self, item: _Changed) -> list[PaymentEvent]:
        entity_id = str(item.record["Id"])
        if item.deleted:  # only the id is left; the home currency is read only then
            gone = {
                "Payment": deleted_payment_events,
                "Invoice": deleted_invoice_events,
                "CreditMemo": deleted_credit_memo_events,
            }[item.entity]
            return gone(entity_id, item.at, self._catalog.home_currency)
        currency = self._catalog.currency_of(item.record)
        if item.entity == "Payment":
            return payment_events(item.record, currency)
        if item.entity == "CreditMemo":
            return credit_memo_events(item.record, currency)
        return invoice_events(item.record, currency)

    def _window(self, since: datetime) -> tuple[list[_Changed], datetime, bool]:
        """(changes oldest first, covered up to, caught up?) for one CDC window."""
        changed, server_time = self._cdc(CDC_ENTITIES, since)
        if len(changed) < CDC_CAP:
            return changed, server_time, True
        bounds: list[datetime] = []
        changed = []
        for entity in CDC_ENTITIES:
            alone, _ = self._cdc((entity,), since)
            if len(alone) >= CDC_CAP:
                bounds.append(max(c.at for c in alone))
            changed += alone
        if not bounds:
            return sorted(changed, key=_order), server_time, True
        bound = min(bounds)
        if bound <= since:
            raise ConnectorError(
                system=SYSTEM,
                error_class=ErrorClass.TRANSIENT,
                message=f"more than {CDC_CAP} QuickBooks changes share the instant {since}; "
                "CDC cannot page past them — run a full reconcile",
                code="CDC_WINDOW_FULL",
            )
        kept = sorted((c for c in changed if c.at < bound), key=_order)
        return kept, bound, False

    def _cdc(self, entities: Iterable[str], since: datetime) -> tuple[list[_Changed], datetime]:
        try:
            answer = self._client.call(
                "GET",
                "cdc",
                params={"entities": ",".join(entities), "changedSince": since.isoformat()},
                reading=True,
            )
        except ConnectorError as exc:
            if exc.code == "6000" and "older than" in exc.message:
                raise self._too_old(format_cursor(since)) from None
            raise
        changed: list[_Changed] = []
        for block in answer.get("CDCResponse") or []:
            for response in block.get("QueryResponse") or []:
                for entity in CDC_ENTITIES:
                    for record in response.get(entity) or []:
                        changed.append(_Changed(_updated(record), entity, record))
        server_time = parse_time(answer["time"]) if answer.get("time") else self._clock()
        return sorted(changed, key=_order), server_time

    def _parse_cursor(self, cursor: str) -> datetime:
        try:
            return parse_time(cursor)
        except ValueError:
            raise ConnectorError(
                system=SYSTEM,
                error_class=ErrorClass.INVALID_DATA,
                message=f"the stored QuickBooks CDC cursor {cursor[:40]!r} is not a timestamp; "
                "reset the cursor and run a full reconcile",
                code="BAD_CURSOR",
            ) from None

    @staticmethod
    def _too_old(cursor: str) -> ConnectorError:
        return ConnectorError(
            system=SYSTEM,
            error_class=ErrorClass.INVALID_DATA,
            message=f"the QuickBooks CDC cursor {cursor} is older than QuickBooks' 30-day "
            "change history, so payments may have been missed: run a full reconcile of the "
            "open QuickBooks invoices; the feed then restarts from now",
            code="CURSOR_TOO_OLD",
        )


def _updated(record: Mapping[str, Any]) -> datetime:
    return parse_time((record.get("MetaData") or {}).get("LastUpdatedTime"))


def _order(item: _Changed) -> tuple[datetime, int, str]:
    return (item.at, CDC_ENTITIES.index(item.entity), str(item.record.get("Id")))
