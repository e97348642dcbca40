"""Customers: ledger link, then a deterministic match, then create — never a duplicate.

Resolution order (each step only when the one before found nothing):
1. ``Customer.external_id`` (the ledger's link): returned as is, no call.
2. ``GET /v1/customers?email=…`` (strongly consistent), keeping only a customer whose
   ``metadata.billsync_account_id`` is the Salesforce Account id. A customer with the
   same email but no such metadata is someone else's record and is not adopted.
3. ``GET /v1/customers/search`` on that metadata, for a customer whose email changed or
   who has none. Search lags writes (about a minute, up to an hour in incidents,
   api-facts §3.2), which is why it is not step 2 — and why step 4 can still rely on it:
4. ``POST /v1/customers`` with an idempotency key derived from the Account id alone. A
   create repeated within 24 h replays the first one (checked to be still alive); after
   24 h the first customer is long searchable, so step 3 finds it. Together no window is
   left open. Should the key be taken by other details (the customer was deleted, or
   renamed within the search lag), a key naming the new details is used instead.

Many accounts at once (`resolve_many`, the engine's batch hook): steps 2 and 3 become a
few search OR-queries joined with a strongly consistent list of recently created
customers (`customer_lookup`); an account with no customer of its own is then looked
up by name and email, and a customer that existed before billsync is adopted under the
identity rule (`billsync.core.customer_identity.decide`: unique, linked to no other account,
same name and the same email, postal code or tax id) instead of being duplicated. A
name-only or already-linked match waits for a person (``CUSTOMER_AMBIGUOUS``); the rest
are created (step 4): about 1.3 calls per new customer, and no window left open (the
recent list sees what search does not yet). Stripe names are not unique, so a name
held by another account's customer needs no disambiguation.

A linked customer deleted out of band is not recreated silently: Stripe refuses to bill
it ("No such customer"), and the invoice step reports ``not_found`` naming the customer
and the fix. Someone deleted it on purpose (merged duplicates, erased personal data);
recreating it would undo that and split the account's billing history, so a person
decides (clear the link and let billsync create a new one, or relink it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from billsync.connectors.stripe.client import Reply, StripeApi
from billsync.connectors.stripe.convert import ACCOUNT_KEY, customer_params, metadata
from billsync.connectors.stripe.customer_lookup import CustomerLookup, account_query
from billsync.core.canonical import Customer
from billsync.core.customer_identity import (
    CREATED,
    MATCHED,
    Adopt,
    Ambiguous,
    Candidate,
    CustomerOwners,
    Resolved,
    ambiguous_error,
    decide,
    no_owners,
)
from billsync.core.idempotency import short_key
from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = ["CustomerResolver"]

log = get_logger("billsync.stripe.customers")


class CustomerResolver:
    def __init__(
        self,
        api: StripeApi,
        *,
        now: Callable[[], datetime],
        recent_window: timedelta = timedelta(hours=2),
    ) -> None:
        self._api = api
        self._lookup = CustomerLookup(api, now=now, recent_window=recent_window)

    def ensure(self, customer: Customer) -> Customer:
        if customer.external_id:
            return customer
        found = self._find(customer)
        if found is None:
            found = self._create(customer)
        return customer.model_copy(update={"external_id": found})

    def ensure_many(self, customers: Sequence[Customer]) -> Mapping[str, Customer | ConnectorError]:
        """`resolve_many` without a ledger (nobody else is known to hold a customer)."""
        return {
            account: outcome.customer if isinstance(outcome, Resolved) else outcome
            for account, outcome in self.resolve_many(customers, no_owners).items()
        }

    def resolve_many(
        self, customers: Sequence[Customer], owners: CustomerOwners
    ) -> dict[str, Resolved | ConnectorError]:
        """One outcome per account id. A failed lookup raises (nothing is known about
        any of them); a failed create is that account's outcome, and after an auth error
        the remaining creates are not attempted."""
        outcomes: dict[str, Resolved | ConnectorError] = {}
        wanted: dict[str, Customer] = {}
        for customer in customers:
            if customer.external_id:
                outcomes[customer.account_id] = Resolved(customer, None)
            else:
                wanted.setdefault(customer.account_id, customer)
        if not wanted:
            return outcomes
        found = self._lookup.candidates(list(wanted.values()))
        ids = {str(c["id"]) for matches in found.values() for c in matches}
        held = {key: set(value) for key, value in owners(ids).items()} if ids else {}
        stopped: ConnectorError | None = None
        for account, customer in wanted.items():
            candidates = [_candidate(c) for c in found.get(account, [])]
            mine = [c.id for c in candidates if c.account_id == account]
            if len(mine) > 1:
                log.warning("stripe.customer_duplicates", account_id=account, customers=mine)
            decision = decide(customer, candidates, names=[customer.name], owners=held)
            if isinstance(decision, Adopt):
                chosen = decision.candidate.id
                held.setdefault(chosen, set()).add(account)  # later accounts see it taken
                log.info(
                    "stripe.customer_adopted",
                    account_id=account,
                    id=chosen,
                    evidence=sorted(decision.evidence),
                )
                adopted = customer.model_copy(update={"external_id": chosen})
                outcomes[account] = Resolved(adopted, MATCHED, decision.evidence)
                continue
            if isinstance(decision, Ambiguous):
                log.warning(
                    "stripe.customer_ambiguous",
                    account_id=account,
                    candidates=[c.id for c in decision.candidates],
                    reason=decision.reason,
                )
                outcomes[account] = ambiguous_error("stripe", "Stripe", customer, decision)
                continue
            if stopped is not None:
                outcomes[account] = stopped
                continue
            try:
                created = self._create(customer)
            except ConnectorError as exc:
                outcomes[account] = exc
                if exc.error_class is ErrorClass.AUTH:
                    stopped = exc
                continue
            held.setdefault(created, set()).add(account)
            made = customer.model_copy(update={"external_id": created})
            outcomes[account] = Resolved(made, CREATED, None)
        return outcomes

    def _find(self, customer: Customer) -> str | None:
        if customer.email:
            for candidate in self._by_email(customer.email):
                if metadata(candidate).get(ACCOUNT_KEY) == customer.account_id:
                    return str(candidate["id"])
        query = account_query([customer.account_id])
        matches = [
            c
            for c in self._api.search_pages(
                "customer search",
                lambda params, options: self._api.v1.customers.search(
                    params=params, options=options
                ),
                query,
            )
            if metadata(c).get(ACCOUNT_KEY) == customer.account_id
        ]
        if len(matches) > 1:
            log.warning(
                "stripe.customer_duplicates",
                account_id=customer.account_id,
                customers=[c["id"] for c in matches],
            )
        # Oldest first: the one invoices most likely already point at.
        matches.sort(key=lambda c: (c.get("created") or 0, c["id"]))
        return str(matches[0]["id"]) if matches else None

    def _by_email(self, email: str) -> Iterator[dict[str, Any]]:
        return self._api.pages(
            "customer lookup by email",
            lambda params, options: self._api.v1.customers.list(params=params, options=options),
            {"email": email},
        )

    def _create(self, customer: Customer) -> str:
        base = f"billsync:stripe:customer:{customer.account_id}"
        params = customer_params(customer)
        try:
            reply = self._post(params, short_key(base, "create"))
        except ConnectorError as exc:
            if exc.code != "idempotency_error":
                raise
            # This account's key was used in the last 24 h with other details: a
            # customer made moments ago (not searchable yet) or since deleted. Create
            # under a key naming these details; at worst a duplicate customer (no
            # money involved) that the duplicate warning above reports.
            digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
            reply = self._post(params, short_key(base, f"create:{digest[:16]}"))
        if reply.replayed:
            # The key returned an earlier create: make sure that customer still exists.
            current = self._api.call(
                "customer read",
                lambda options: self._api.v1.customers.retrieve(reply.data["id"], options=options),
            ).data
            if current.get("deleted"):
                reply = self._post(params, short_key(base, f"create:after:{reply.data['id']}"))
        log.info("stripe.customer_created", account_id=customer.account_id, id=reply.data["id"])
        self._lookup.remember(reply.data)
        return str(reply.data["id"])

    def _post(self, params: dict[str, Any], key: str) -> Reply:
        return self._api.call(
            "customer create",
            lambda options: self._api.v1.customers.create(params=params, options=options),
            idempotency_key=key,
        )


def _candidate(customer: Mapping[str, Any]) -> Candidate:
    address = customer.get("address") or {}
    return Candidate(
        id=str(customer["id"]),
        name=str(customer.get("name") or ""),
        email=customer.get("email"),
        postal_code=address.get("postal_code") if isinstance(address, Mapping) else None,
        account_id=metadata(customer).get(ACCOUNT_KEY) or None,
        record=customer,
    )
