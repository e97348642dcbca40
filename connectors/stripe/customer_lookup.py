"""Finding the customers of many Salesforce Accounts at once (the engine's batch hook).

Per account, `customers.CustomerResolver.ensure` spends an email list and a search
before it creates (3 calls for a new customer). For a batch this module finds every
account's customer in a few calls, with the same guarantee (nothing billsync or anyone
else created for the account is missed, however recent):
- search OR-queries on ``metadata.billsync_account_id``, ten accounts a query (Stripe's
  clause limit), which find every customer older than the search lag (api-facts §3.2);
- joined, as `lookup.InvoiceLookup` does for invoices, with a list of the customers
  created in the last ``recent_window`` (2 h, beyond Stripe's worst reported lag of
  about an hour): a list is strongly consistent, so a customer created a moment ago (a
  crashed run's, another worker's, one made by hand) is seen too.

The recent list is incremental within a process: the first one covers the whole window,
each later one starts at the newest ``created`` seen, so a long run lists each new
customer about once instead of the whole window every batch. What it saw stays in
memory while it is recent (older customers are search's job). A customer remembered
from an earlier list, not found again now, is read once before it is used: it may have
been deleted since (an operator unlinking a deleted customer must get a new one, not the
deleted one back).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from connectors.base import ConnectorError, ErrorClass
from connectors.stripe.client import StripeApi
from connectors.stripe.convert import ACCOUNT_KEY, metadata

__all__ = ["SEARCH_CLAUSES", "CustomerLookup", "account_query"]

SEARCH_CLAUSES = 10  # Stripe search: at most 10 clauses a query
# The `created` second is coarse and a create may commit a little after the second it
# is stamped with: each incremental list reaches back this far before the newest seen.
_OVERLAP_S = 2

StripeCustomer = dict[str, Any]


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def account_query(accounts: Iterable[str]) -> str:
    """``metadata['billsync_account_id']:'A' OR …`` (at most `SEARCH_CLAUSES` accounts)."""
    clause = f"metadata[{_quoted(ACCOUNT_KEY)}]:"
    return " OR ".join(clause + _quoted(account) for account in accounts)


class CustomerLookup:
    def __init__(
        self, api: StripeApi, *, now: Callable[[], datetime], recent_window: timedelta
    ) -> None:
        self._api = api
        self._now = now
        self._window = recent_window
        self._recent: dict[str, StripeCustomer] = {}  # id -> a recent customer of ours
        self._listed_up_to: int | None = None  # newest `created` the recent list saw

    def by_accounts(self, accounts: Sequence[str]) -> dict[str, list[StripeCustomer]]:
        """Every live customer whose metadata names one of ``accounts``, oldest first."""
        wanted = set(accounts)
        found: dict[str, dict[str, StripeCustomer]] = defaultdict(dict)
        ordered = sorted(wanted)
        for start in range(0, len(ordered), SEARCH_CLAUSES):
            for customer in self._search(ordered[start : start + SEARCH_CLAUSES]):
                found[metadata(customer).get(ACCOUNT_KEY, "")][str(customer["id"])] = customer
        listed = self._list_recent()
        for customer in list(self._recent.values()):
            account = metadata(customer).get(ACCOUNT_KEY, "")
            if account not in wanted or str(customer["id"]) in found[account]:
                continue
            if str(customer["id"]) not in listed and not self._alive(customer):
                continue
            found[account][str(customer["id"])] = customer
        return {
            account: sorted(by_id.values(), key=lambda c: (c.get("created") or 0, c["id"]))
            for account, by_id in found.items()
            if account in wanted and by_id
        }

    def remember(self, customer: StripeCustomer) -> None:
        """A customer just created: later batches find it without waiting for a list."""
        if metadata(customer).get(ACCOUNT_KEY):
            self._recent[str(customer["id"])] = customer

    def _search(self, accounts: Sequence[str]) -> Iterable[StripeCustomer]:
        return self._api.search_pages(
            "customer search",
            lambda params, options: self._api.v1.customers.search(params=params, options=options),
            account_query(accounts),
        )

    def _list_recent(self) -> set[str]:
        """List the customers created since the last list (the whole window the first
        time); remember ours. Returns the ids this list saw."""
        horizon = int((self._now() - self._window).timestamp())
        since = horizon
        if self._listed_up_to is not None:
            since = max(horizon, self._listed_up_to - _OVERLAP_S)
        seen: set[str] = set()
        for customer in self._api.pages(
            "recent customer list",
            lambda params, options: self._api.v1.customers.list(params=params, options=options),
            {"created": {"gte": since}},
        ):
            seen.add(str(customer["id"]))
            created = int(customer.get("created") or 0)
            self._listed_up_to = max(self._listed_up_to or 0, created)
            self.remember(customer)
        for customer_id, customer in list(self._recent.items()):
            if int(customer.get("created") or 0) < horizon:
                del self._recent[customer_id]  # searchable by now: search's job
        return seen

    def _alive(self, customer: StripeCustomer) -> bool:
        try:
            current = self._api.call(
                "customer read",
                lambda options: self._api.v1.customers.retrieve(customer["id"], options=options),
            ).data
        except ConnectorError as exc:
            if exc.error_class is not ErrorClass.NOT_FOUND:
                raise
            current = {"deleted": True}
        if current.get("deleted") or metadata(current).get(ACCOUNT_KEY) != metadata(customer).get(
            ACCOUNT_KEY
        ):
            del self._recent[str(customer["id"])]
            return False
        return True
