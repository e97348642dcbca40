"""Reading invoices back: one by id, all of a deal's, and an invoice's lines.

The deal lookup is what makes exactly-once survive expired idempotency keys (DESIGN.md
"Exactly once"): it must find an invoice a crashed attempt created minutes ago, so it
never relies on search alone (``/v1/invoices/search`` lags writes, api-facts §3.2):
- with the customer known, every invoice of that customer is listed — complete and
  strongly consistent, one call per 100 invoices;
- without it, search (which finds everything older than its lag) is joined with a list
  of every invoice created in the last ``recent_window`` (2 h by default, beyond
  Stripe's worst reported search lag of about an hour).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from billsync.connectors.stripe.client import StripeApi
from billsync.connectors.stripe.convert import DEAL_KEY, metadata

__all__ = ["Invoice", "InvoiceLookup"]

Invoice = dict[str, Any]


class InvoiceLookup:
    def __init__(
        self, api: StripeApi, *, now: Callable[[], datetime], recent_window: timedelta
    ) -> None:
        self._api = api
        self._now = now
        self._recent_window = recent_window

    def retrieve(self, invoice_id: str) -> Invoice:
        return self._api.call(
            "invoice read", lambda o: self._api.v1.invoices.retrieve(invoice_id, options=o)
        ).data

    def by_deal(self, deal_id: str, customer_id: str | None) -> list[Invoice]:
        """Invoices whose ``metadata.billsync_deal_id`` is the deal, oldest first."""
        invoices = self._api.v1.invoices
        found: dict[str, Invoice] = {}
        if customer_id:
            listed = self._api.pages(
                "invoice list for customer",
                lambda p, o: invoices.list(params=p, options=o),
                {"customer": customer_id},
            )
            candidates = list(listed)
        else:
            quoted = deal_id.replace("\\", "\\\\").replace("'", "\\'")
            searched = self._api.search_pages(
                "invoice search",
                lambda p, o: invoices.search(params=p, options=o),
                f"metadata['{DEAL_KEY}']:'{quoted}'",
            )
            since = int((self._now() - self._recent_window).timestamp())
            recent = self._api.pages(
                "recent invoice list",
                lambda p, o: invoices.list(params=p, options=o),
                {"created": {"gte": since}},
            )
            candidates = [*searched, *recent]
        for inv in candidates:
            if metadata(inv).get(DEAL_KEY) == deal_id:
                found[str(inv["id"])] = inv
        return sorted(found.values(), key=lambda i: (i.get("created") or 0, i["id"]))

    def lines(self, inv: Invoice) -> list[Mapping[str, Any]]:
        """All lines: the invoice embeds its first 10; page through the rest."""
        embedded = inv.get("lines") or {}
        if not embedded.get("has_more"):
            return list(embedded.get("data") or [])
        items = self._api.v1.invoices.line_items
        return list(
            self._api.pages(
                "invoice lines",
                lambda p, o: items.list(inv["id"], params=p, options=o),
                {},
            )
        )
