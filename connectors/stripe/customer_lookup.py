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

Accounts none of whose own customers turns up are then looked up by identity, for a
customer that existed before billsync (made by hand, by another integration): search
OR-queries on ``name`` and ``email`` (up to ten clauses a query), joined with every
customer the recent list saw (not only ours), for one made moments ago. Those are the
candidates `billsync.core.customer_identity.decide` judges; this module only finds them.

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

from billsync.connectors.stripe.client import StripeApi
from billsync.connectors.stripe.convert import ACCOUNT_KEY, metadata
from billsync.core.canonical import Customer
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = ["SEARCH_CLAUSES", "CustomerLookup", "account_query", "identity_queries"]

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


def _keys(customer: Customer) -> list[tuple[str, str]]:
    keys = [("name", customer.name)]
    if customer.email:
        keys.append(("email", customer.email))
    return keys


def identity_queries(customers: Sequence[Customer]) -> list[str]:
    """``name:'N' OR email:'E' OR …``, an account's clauses kept in one query, at most
    `SEARCH_CLAUSES` clauses each."""
    queries: list[str] = []
    clauses: list[str] = []
    for customer in customers:
        mine = [f"{field}:{_quoted(value)}" for field, value in _keys(customer)]
        if len(clauses) + len(mine) > SEARCH_CLAUSES:
            queries.append(" OR ".join(clauses))
            clauses = []
        clauses += mine
    if clauses:
        queries.append(" OR ".join(clauses))
    return queries


def _fold(value: Any) -> str:
    return " ".join(str(value or "").split()).casefold()


class CustomerLookup:
    def __init__(
        self, api: StripeApi, *, now: Callable[[], datetime], recent_window: timedelta
    ) -> None:
        self._api = api
        self._now = now
        self._window = recent_window
        self._recent: dict[str, StripeCustomer] = {}  # id -> a recent customer of ours
        self._recent_any: dict[str, StripeCustomer] = {}  # id -> any recent customer
        self._listed_up_to: int | None = None  # newest `created` the recent list saw

    def candidates(self, customers: Sequence[Customer]) -> dict[str, list[StripeCustomer]]:
        """Per account: its own customers (metadata names it) or, when it has none, the
        live customers carrying its name or email; oldest first."""
        listed = self._list_recent()
        found = self._by_accounts([c.account_id for c in customers], listed)
        rest = [c for c in customers if c.account_id not in found]
        if rest:
            found.update(self._by_identity(rest, listed))
        return found

    def by_accounts(self, accounts: Sequence[str]) -> dict[str, list[StripeCustomer]]:
        """Every live customer whose metadata names one of ``accounts``, oldest first."""
        return self._by_accounts(accounts, self._list_recent())

    def _by_identity(
        self, customers: Sequence[Customer], listed: set[str]
    ) -> dict[str, list[StripeCustomer]]:
        hits: dict[str, StripeCustomer] = {}
        for query in identity_queries(customers):
            for customer in self._search_query(query):
                hits[str(customer["id"])] = customer
        for customer_id, customer in list(self._recent_any.items()):
            if customer_id not in hits:
                hits[customer_id] = customer
        found: dict[str, list[StripeCustomer]] = {}
        for wanted in customers:
            keys = {(field, _fold(value)) for field, value in _keys(wanted)}
            matching = [
                c for c in hits.values() if keys & {("name", _fold(c.get("name"))),
                                                   ("email", _fold(c.get("email")))}
            ]  # fmt: skip
            alive = [c for c in matching if str(c["id"]) in listed or self._exists(c, hits)]
            if alive:
                found[wanted.account_id] = sorted(
                    alive, key=lambda c: (c.get("created") or 0, c["id"])
                )
        return found

    def _exists(self, customer: StripeCustomer, searched: dict[str, StripeCustomer]) -> bool:
        """A candidate remembered from an earlier list (not seen by this one) may have
        been deleted since; search results are live."""
        customer_id = str(customer["id"])
        if customer_id not in self._recent_any:
            return True  # from search
        try:
            current = self._api.call(
                "customer read",
                lambda options: self._api.v1.customers.retrieve(customer_id, options=options),
            ).data
        except ConnectorError as exc:
            if exc.error_class is not ErrorClass.NOT_FOUND:
                raise
            current = {"deleted": True}
        if current.get("deleted"):
            self._recent_any.pop(customer_id, None)
            searched.pop(customer_id, None)
            return False
        return True

    def _by_accounts(
        self, accounts: Sequence[str], listed: set[str]
    ) -> dict[str, list[StripeCustomer]]:
        wanted = set(accounts)
        found: dict[str, dict[str, StripeCustomer]] = defaultdict(dict)
        ordered = sorted(wanted)
        for start in range(0, len(ordered), SEARCH_CLAUSES):
            for customer in self._search(ordered[start : start + SEARCH_CLAUSES]):
                found[metadata(customer).get(ACCOUNT_KEY, "")][str(customer["id"])] = customer
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
        return self._search_query(account_query(accounts))

    def _search_query(self, query: str) -> Iterable[StripeCustomer]:
        return self._api.search_pages(
            "customer search",
            lambda params, options: self._api.v1.customers.search(params=params, options=options),
            query,
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
            self._recent_any[str(customer["id"])] = customer
        for recent in (self._recent, self._recent_any):
            for customer_id, customer in list(recent.items()):
                if int(customer.get("created") or 0) < horizon:
                    del recent[customer_id]  # searchable by now: search's job
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
