"""Everything a Stripe handler touches: the objects, the event log, the search indexes.

`emit` is the single place a change is published: it appends the Event (and so the
webhook) and feeds the search index, which makes the change searchable only after the
configured lag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from billsync.sandbox.stripe.events import EventLog, changed
from billsync.sandbox.stripe.search import SearchIndex
from billsync.sandbox.stripe.store import Obj, Origin, StripeStore
from billsync.sandbox.stripe.views import without_includable

CUSTOMER_SEARCH_FIELDS = {
    "created": "number",
    "email": "string",
    "name": "string",
    "phone": "string",
}
INVOICE_SEARCH_FIELDS = {
    "created": "number",
    "currency": "string",
    "customer": "string",
    "number": "string",
    "receipt_number": "string",
    "status": "string",
    "subscription": "string",
    "total": "number",
}


def _indexes() -> dict[str, SearchIndex]:
    return {
        "customer": SearchIndex("customers", CUSTOMER_SEARCH_FIELDS),
        "invoice": SearchIndex("invoices", INVOICE_SEARCH_FIELDS),
    }


@dataclass
class State:
    store: StripeStore
    events: EventLog
    search_delay_s: float
    search: dict[str, SearchIndex] = field(default_factory=_indexes)
    # The account's "Email finalized invoices to customers" setting (Dashboard, Billing >
    # Customer emails): Stripe emails an auto-advancing send_invoice invoice when it is
    # finalized only while this is on.
    email_finalized_invoices: bool = True

    def now(self) -> int:
        return self.store.now()

    def emit(
        self,
        type_: str,
        obj: Obj,
        origin: Origin,
        before: Obj | None = None,
    ) -> None:
        previous: dict[str, Any] | None = changed(before, obj) if before is not None else None
        # Events render objects as the API does unexpanded: no includable fields.
        self.events.emit(type_, without_includable(obj), origin, previous)
        index = self.search.get(obj.get("object", ""))
        if index is not None:
            removed = type_.endswith(".deleted")
            visible_at = self.store.clock.now().timestamp() + self.search_delay_s
            index.record(obj["id"], None if removed else obj, visible_at)

    def index_now(self, obj: Obj) -> None:
        """Seeded objects are searchable at once: they existed before the sandbox started."""
        index = self.search.get(obj.get("object", ""))
        if index is not None:
            index.record(obj["id"], obj, self.store.clock.now().timestamp())

    def clear(self) -> None:
        self.store.clear()
        self.events.clear()
        for index in self.search.values():
            index.clear()
