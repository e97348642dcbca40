"""Customer resolution: link → the identity rule over same-named customers → create.

The ledger link is the engine's: a `Customer` with ``external_id`` is returned as is.
Otherwise, for a whole set of customers at once:

1. one query per ≤ 50 names: ``DisplayName IN (...) AND Active IN (true, false)``
   (exact, case-insensitive as QBO compares; inactive included so it can be reported);
2. each account's same-named customer (DisplayName is unique, so at most one) is judged
   by `billsync.core.customer_identity.decide`: adopted only when it names this account in its
   Notes (billsync made it, the answer was lost) or agrees on email, billing postal code
   or tax id and is linked to no other account (``owners``, from the ledger, plus the
   accounts resolved earlier in this batch); a name-only match, or a match already
   linked to another account, waits for a person (``CUSTOMER_AMBIGUOUS``, naming the
   candidate and the ``billsync customers link`` command); a name held by another
   account's customer is disambiguated, as a vendor's or employee's is;
3. the rest are created in batches (≤ 30 a call, with a requestid).

No email query: an email never decides on its own (accounts share AP mailboxes), so a
customer found only by email could never be adopted. ``match_customer_by_email: false``
keeps email out of the evidence too (postal code or tax id must then agree).

DisplayName rules (api-facts §2.2): unique across Customer, Vendor AND Employee, no
``:`` (replaced by ``display_name_colon_replacement``), ≤ 500 characters. When a
create fails with 6240 (the name is taken), the Customer of that exact name is judged
by the same rule — our own earlier create whose answer was lost names this account in
its Notes and is adopted; otherwise ``duplicate_name_strategy`` appends the account
number (or the last 6 characters of the account id) — "Acme (AC-00001)" — and creates
once more. What was done is logged and returned in ``Resolved`` (method, evidence).

A matching customer that is inactive is reported (``invalid_data``), not reactivated,
unless ``reactivate_inactive_customers`` is set. QuickBooks customers have one
currency: a match in another currency is reported.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from billsync.connectors.quickbooks.catalog import ALL, QboCatalog
from billsync.connectors.quickbooks.client import SYSTEM, QboClient, batch_fault
from billsync.connectors.quickbooks.convert import customer_body, display_name, ref_value
from billsync.connectors.quickbooks.query import in_list, in_lists, select
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.core.canonical import Customer
from billsync.core.customer_identity import (
    CREATED,
    MATCHED,
    Adopt,
    Ambiguous,
    Candidate,
    CustomerOwners,
    Decision,
    NameTaken,
    Resolved,
    ambiguous_error,
    decide,
    no_owners,
)
from billsync.core.idempotency import short_key
from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = ["CustomerResolver"]

log = get_logger("billsync.quickbooks.customers")
Outcome = Resolved | ConnectorError
LABEL = "QuickBooks"
# customer_body writes "billsync: Salesforce account <id> (<number>)" into Notes.
_NOTES_ACCOUNT = re.compile(r"billsync: Salesforce account (\S+)")


def _invalid(message: str, code: str) -> ConnectorError:
    return ConnectorError(
        system=SYSTEM,
        error_class=ErrorClass.INVALID_DATA,
        message=message,
        code=code,
        field="customer",
    )


def _index(records: Iterable[Mapping[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        value = record.get(key)
        if isinstance(value, Mapping):
            value = value.get("Address")
        if value:
            found.setdefault(str(value).casefold(), []).append(dict(record))
    return found


def _candidate(record: Mapping[str, Any], with_email: bool) -> Candidate:
    email = (record.get("PrimaryEmailAddr") or {}).get("Address") if with_email else None
    notes = _NOTES_ACCOUNT.search(str(record.get("Notes") or ""))
    return Candidate(
        id=str(record["Id"]),
        name=str(record.get("DisplayName") or ""),
        email=email,
        postal_code=(record.get("BillAddr") or {}).get("PostalCode"),
        account_id=notes.group(1) if notes else None,
        record=record,
    )


@dataclass
class _Claims:
    """Who holds which customer: the ledger's links, and this batch's own choices."""

    owners: CustomerOwners
    claimed: dict[str, str] = field(default_factory=dict)  # customer id -> account

    def of(self, ids: Collection[str]) -> dict[str, set[str]]:
        held = {key: set(value) for key, value in self.owners(ids).items()} if ids else {}
        for customer_id in ids:
            if customer_id in self.claimed:
                held.setdefault(customer_id, set()).add(self.claimed[customer_id])
        return held

    def claim(self, outcome: Outcome, account: str) -> Outcome:
        if isinstance(outcome, Resolved) and outcome.customer.external_id:
            self.claimed[outcome.customer.external_id] = account
        return outcome


class CustomerResolver:
    def __init__(self, client: QboClient, settings: QuickBooksSettings, catalog: QboCatalog):
        self._client = client
        self._settings = settings
        self._catalog = catalog
        self._done: dict[str, Outcome] = {}
        self.outcomes: dict[str, str] = {}  # account id -> what was done, for the audit

    def ensure(self, customer: Customer) -> Customer:
        result = self.ensure_many([customer])[customer.account_id]
        if isinstance(result, ConnectorError):
            raise result
        return result

    def ensure_many(self, customers: Sequence[Customer]) -> dict[str, Customer | ConnectorError]:
        """`resolve_many` without a ledger (nobody else is known to hold a customer)."""
        return {
            key: outcome.customer if isinstance(outcome, Resolved) else outcome
            for key, outcome in self.resolve_many(customers, no_owners).items()
        }

    def resolve_many(
        self, customers: Sequence[Customer], owners: CustomerOwners
    ) -> dict[str, Outcome]:
        """One outcome per account id; resolved customers are cached for the run."""
        out: dict[str, Outcome] = {}
        todo: dict[str, Customer] = {}
        for customer in customers:
            key = customer.account_id
            if key in out or key in todo:
                continue
            if customer.external_id:
                out[key] = Resolved(customer, None)
                self.outcomes.setdefault(key, "linked")
            elif key in self._done:
                out[key] = self._done[key]
            else:
                todo[key] = customer
        if todo:
            claims = _Claims(owners)
            names = {key: self._name(c) for key, c in todo.items()}
            rest = self._match_names(todo, names, out, claims)
            self._create(rest, names, out, claims)
            for key in todo:
                result = out[key]
                if isinstance(result, Resolved) or not result.is_retryable:
                    self._done[key] = result
        return out

    # --- matching ------------------------------------------------------------------

    def _name(self, customer: Customer, suffix: str = "") -> str:
        return display_name(customer.name, self._settings.display_name_colon_replacement, suffix)

    def _by_names(self, names: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        for chunk in in_lists(names):
            statement = select("Customer", f"DisplayName IN {in_list(chunk)}", ALL)
            rows += self._client.query(statement).get("Customer", [])
        return _index(rows, "DisplayName")

    def _decide(
        self, customer: Customer, records: Sequence[Mapping[str, Any]], name: str, claims: _Claims
    ) -> Decision:
        with_email = self._settings.match_customer_by_email
        candidates = [_candidate(record, with_email) for record in records]
        held = claims.of([c.id for c in candidates])
        return decide(customer, candidates, names=[name], owners=held)

    def _match_names(
        self,
        todo: Mapping[str, Customer],
        names: Mapping[str, str],
        out: dict[str, Outcome],
        claims: _Claims,
    ) -> list[Customer]:
        """Judge each account's same-named customer; returns the accounts to create."""
        found = self._by_names(names.values())
        rest = []
        for key, customer in todo.items():
            records = found.get(names[key].casefold())
            if not records:
                rest.append(customer)
                continue
            decision = self._decide(customer, records, names[key], claims)
            if isinstance(decision, NameTaken):
                # Another account's customer holds the name: go straight to the
                # disambiguated name (the plain create could only fail with 6240).
                out[key] = self._on_duplicate(customer, names[key], False, claims)
            elif isinstance(decision, Adopt | Ambiguous):
                out[key] = self._settle(customer, decision, claims)
            else:
                rest.append(customer)
        return rest

    def _settle(self, customer: Customer, decision: Adopt | Ambiguous, claims: _Claims) -> Outcome:
        if isinstance(decision, Ambiguous):
            log.warning(
                "quickbooks.customer_ambiguous",
                account_id=customer.account_id,
                candidates=[c.id for c in decision.candidates],
                reason=decision.reason,
            )
            return ambiguous_error(SYSTEM, LABEL, customer, decision)
        result = self._accept(customer, decision.candidate.record, decision.evidence)
        return claims.claim(result, customer.account_id)

    def _accept(
        self, customer: Customer, record: Mapping[str, Any], evidence: dict[str, Any]
    ) -> Outcome:
        label = f"QuickBooks customer '{record.get('DisplayName')}' (Id {record['Id']})"
        currency = ref_value(record.get("CurrencyRef")) or self._catalog.home_currency
        if customer.currency and currency != customer.currency:
            return _invalid(
                f"{label} bills in {currency} but account {customer.account_id} is invoiced "
                f"in {customer.currency}; QuickBooks customers have one currency — rename one "
                "of them or bill the deal in the customer's currency",
                "CURRENCY_MISMATCH",
            )
        how = "matched"
        if not record.get("Active", True):
            if not self._settings.reactivate_inactive_customers:
                return _invalid(
                    f"{label} matches account {customer.account_id} but is inactive; "
                    "reactivate it in QuickBooks or set "
                    "quickbooks.reactivate_inactive_customers: true",
                    "INACTIVE_CUSTOMER",
                )
            try:
                record = self._client.update(
                    "Customer",
                    str(record["Id"]),
                    lambda cur: {
                        "Id": cur["Id"], "SyncToken": cur["SyncToken"], "sparse": True,
                        "Active": True,
                    },
                )  # fmt: skip
            except ConnectorError as exc:
                return exc
            how = "reactivated"
            evidence = {**evidence, "reactivated": True}
        self.outcomes[customer.account_id] = how
        log.info(
            "quickbooks.customer_resolved",
            account_id=customer.account_id,
            customer_id=record["Id"],
            how=how,
            evidence=sorted(evidence),
        )
        adopted = customer.model_copy(
            update={"external_id": str(record["Id"]), "name": str(record["DisplayName"])}
        )
        return Resolved(adopted, MATCHED, evidence)

    # --- creating ------------------------------------------------------------------

    def _create(
        self,
        rest: list[Customer],
        names: Mapping[str, str],
        out: dict[str, Outcome],
        claims: _Claims,
    ) -> None:
        size = self._settings.batch_size
        for start in range(0, len(rest), size):
            chunk = rest[start : start + size]
            if len(chunk) == 1:
                customer = chunk[0]
                name = names[customer.account_id]
                out[customer.account_id] = self._create_one(customer, name, False, claims)
                continue
            self._create_batch(chunk, names, out, claims)

    def _create_batch(
        self,
        chunk: list[Customer],
        names: Mapping[str, str],
        out: dict[str, Outcome],
        claims: _Claims,
    ) -> None:
        home = self._catalog.home_currency
        items = [
            {
                "bId": f"c{i}",
                "operation": "create",
                "Customer": customer_body(c, names[c.account_id], home),
            }
            for i, c in enumerate(chunk)
        ]
        request_id = short_key(
            "\n".join(sorted(f"{c.account_id}:{names[c.account_id]}" for c in chunk)), "customers"
        )
        try:
            answer = self._client.call(
                "POST", "batch", body={"BatchItemRequest": items}, request_id=request_id, batch=True
            )
        except ConnectorError as exc:
            if exc.error_class is ErrorClass.AUTH:
                raise
            # Safe to fall back even when the batch's fate is unknown: a customer the
            # lost batch created makes the single create fail 6240, and 6240 adopts the
            # Customer of exactly that name whose Notes name this account.
            answer = {"BatchItemResponse": []}
        by_bid = {str(a.get("bId")): a for a in answer.get("BatchItemResponse", [])}
        for i, customer in enumerate(chunk):
            key, item = customer.account_id, by_bid.get(f"c{i}", {})
            if "Customer" in item:
                out[key] = claims.claim(self._created(customer, item["Customer"], names[key]), key)
            elif "Fault" in item and batch_fault(item["Fault"]).code == "6240":
                out[key] = self._on_duplicate(customer, names[key], False, claims)
            elif "Fault" in item and not batch_fault(item["Fault"]).is_retryable:
                out[key] = batch_fault(item["Fault"])
            else:
                out[key] = self._create_one(customer, names[key], False, claims)

    def _created(
        self, customer: Customer, record: Mapping[str, Any], name: str, renamed: bool = False
    ) -> Resolved:
        self.outcomes[customer.account_id] = "created_renamed" if renamed else "created"
        made = customer.model_copy(update={"external_id": str(record["Id"]), "name": name})
        evidence = {"display_name": name, "wanted": self._name(customer)} if renamed else None
        return Resolved(made, CREATED, evidence)

    def _create_one(self, customer: Customer, name: str, renamed: bool, claims: _Claims) -> Outcome:
        body = customer_body(customer, name, self._catalog.home_currency)
        try:
            record = self._client.call(
                "POST",
                "customer",
                body=body,
                request_id=short_key(f"{customer.account_id}:{name}", "customer"),
            )["Customer"]
        except ConnectorError as exc:
            if exc.code == "6240":
                return self._on_duplicate(customer, name, renamed, claims)
            return exc
        return claims.claim(self._created(customer, record, name, renamed), customer.account_id)

    def _on_duplicate(
        self, customer: Customer, name: str, renamed: bool, claims: _Claims
    ) -> Outcome:
        """``name`` is taken: adopt the customer holding it if the rule allows, ask a
        person if it is ambiguous, else create under the disambiguated name."""
        alternative = None if renamed else self._alternative(customer)
        found = self._by_names([name] + ([alternative] if alternative else []))
        holders = found.get(name.casefold(), [])
        if holders:
            decision = self._decide(customer, holders, name, claims)
            if isinstance(decision, Adopt | Ambiguous):
                return self._settle(customer, decision, claims)
        held_by = (
            "another account's QuickBooks customer"
            if holders
            else "a QuickBooks vendor or employee"
        )
        if alternative is None:
            return _invalid(
                f"the name '{name}' for account {customer.account_id} is already used by "
                f"{held_by}; rename one of them"
                + ("" if renamed else " or set quickbooks.duplicate_name_strategy"),
                "6240",
            )
        log.info(
            "quickbooks.customer_renamed",
            account_id=customer.account_id,
            wanted=name,
            display_name=alternative,
            reason=f"6240: the name is used by {held_by}",
        )
        taken = found.get(alternative.casefold(), [])
        if taken:
            decision = self._decide(customer, taken, alternative, claims)
            if isinstance(decision, Adopt | Ambiguous):
                return self._settle(customer, decision, claims)
            return _invalid(
                f"the names '{name}' and '{alternative}' for account {customer.account_id} "
                "are both used by other accounts' QuickBooks customers; rename one of them",
                "6240",
            )
        return self._create_one(customer, alternative, True, claims)

    def _alternative(self, customer: Customer) -> str | None:
        strategy = self._settings.duplicate_name_strategy
        if strategy == "fail":
            return None
        tag = customer.account_number if strategy == "account_number" else None
        tag = (tag or customer.account_id[-6:]).replace(":", "-")
        return self._name(customer, f" ({tag})")
