"""The payment feed: Ledgerly's event list since a cursor, and invoices read fresh.

The cursor is the ``seq`` of the last event read (Ledgerly numbers its events per
account, gap-free and in order), so ``after=<seq>`` resumes exactly. Events that are not
about money (``invoice.created``) move the cursor too: `last_cursor` reports it after a
poll, so a quiet stretch of invoice creations is not read again and again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

from billsync.core.canonical import InvoiceMoney, PaymentEvent, WebhookNotification
from billsync.core.protocols import Checkpointed, ConnectorError, Cursor, ErrorClass
from billsync_ledgerly.client import LedgerlyClient
from billsync_ledgerly.convert import invoice_money, payment_event

__all__ = ["LedgerlyFeed"]

READ_BATCH = 50  # GET /v1/invoices?ids=… takes at most 50 ids


class LedgerlyFeed:
    """`PaymentFeed` (and `ReportsLastCursor`) for one Ledgerly account."""

    def __init__(self, client: LedgerlyClient) -> None:
        self._client = client
        self._last: Cursor | None = None

    @property
    def provider(self) -> str:
        return self._client.connection

    @property
    def last_cursor(self) -> Cursor | None:
        return self._last

    def events_since(self, since: Cursor | None) -> Iterator[Checkpointed[PaymentEvent]]:
        self._last = None
        params = {"after": since or "0", "limit": "100"}
        for event in self._client.pages("read events", "/v1/events", params):
            cursor = str(event["seq"])
            self._last = cursor
            hint = payment_event(self.provider, event)
            if hint is not None:
                yield Checkpointed(hint, cursor)

    def resolve(self, notification: WebhookNotification) -> Sequence[PaymentEvent]:
        # The webhook body is the event itself; it only names what changed, and the
        # amount in it is not believed (read_invoice_money reads the invoice).
        hint = payment_event(self.provider, json.loads(notification.payload))
        return [] if hint is None else [hint]

    def read_invoice_money(self, external_ids: Sequence[str]) -> Mapping[str, InvoiceMoney]:
        found: dict[str, InvoiceMoney] = {}
        ids = list(dict.fromkeys(external_ids))
        for start in range(0, len(ids), READ_BATCH):
            chunk = ids[start : start + READ_BATCH]
            try:
                page = self._client.get("read invoices", "/v1/invoices", {"ids": ",".join(chunk)})
            except ConnectorError as error:
                if error.error_class is ErrorClass.NOT_FOUND:
                    continue  # deleted out of band: absent from the answer
                raise
            for raw in page["data"]:
                found[raw["id"]] = invoice_money(self.provider, raw)
        return found
