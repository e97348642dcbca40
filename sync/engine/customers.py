"""The invoice stage's customers: linked ones from the ledger, the rest from the target
(in one batch where it has one), each new link recorded with how it was made.

A target that matches under the identity rule (`billsync.core.customer_identity`) is told which
accounts each candidate is already linked to, and answers ``created`` or ``matched``
with the evidence; the link is stored with both. Before a matched customer is linked
the ledger is read once more: a customer linked to another account meanwhile is not
adopted silently (the deal waits, naming the candidate and the `customers link` command).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from billsync.core.canonical import Customer
from billsync.core.customer_identity import (
    MATCHED,
    Ambiguous,
    Candidate,
    MatchesCustomers,
    Resolved,
    ambiguous_error,
)
from billsync.core.protocols import ConnectorError, EnsuresCustomers, ErrorClass, InvoiceTarget
from billsync.sync.engine.summary import CONNECTOR_STOPPED, RunSummary
from billsync.sync.ledger import Fence, Ledger

_Batch = Callable[[Sequence[Customer]], Mapping[str, Customer | Resolved | ConnectorError]]
"""Many customers in one go: an outcome per account id."""


@dataclass
class Customers:
    ledger: Ledger
    summary: RunSummary
    fence: Fence | None
    stop: Callable[[str, ConnectorError], bool]
    """Stops the target when the error is one that stops a connector; True if it did."""

    def resolve(
        self, connector: InvoiceTarget, wanted: Sequence[Customer]
    ) -> dict[str, Customer | ConnectorError]:
        """Each wanted account's customer (or why not), by account id."""
        resolved = self._in_batch(connector, wanted)
        for customer in wanted:
            if customer.account_id not in resolved:
                resolved[customer.account_id] = self._one(connector, customer)
        return resolved

    def _in_batch(
        self, connector: InvoiceTarget, wanted: Sequence[Customer]
    ) -> dict[str, Customer | ConnectorError]:
        """Linked customers from the ledger; the rest in one batch where the target has
        one (`MatchesCustomers`, else `EnsuresCustomers`: a few queries and batch creates,
        not one call each)."""
        target = connector.target
        resolved: dict[str, Customer | ConnectorError] = {}
        unlinked: dict[str, Customer] = {}
        links = self.ledger.linked_customers(target, [customer.account_id for customer in wanted])
        for customer in wanted:
            linked = links.get(customer.account_id)
            if linked is not None:
                resolved[customer.account_id] = customer.model_copy(update={"external_id": linked})
            else:
                unlinked.setdefault(customer.account_id, customer)
        batch = self._batch(connector)
        if not unlinked or batch is None or target in self.summary.stopped:
            return resolved
        if self.fence is not None:
            self.fence.check()  # the batch may create customers: a vendor write
        try:
            outcomes = batch(list(unlinked.values()))
        except ConnectorError as error:
            self.stop(target, error)
            return {**resolved, **{account: error for account in unlinked}}
        with self.ledger.fenced(self.fence):
            for account, outcome in outcomes.items():
                resolved[account] = self._record(target, connector, account, outcome)
        return resolved

    def _batch(self, connector: InvoiceTarget) -> _Batch | None:
        """The target's batch path: under the identity rule where it applies it, else
        plain ensure-many; None when it has neither (one call per customer)."""
        target = connector.target
        if isinstance(connector, MatchesCustomers):
            matcher = connector
            return lambda customers: matcher.resolve_customers(
                customers, lambda ids: self.ledger.customer_owners(target, ids)
            )
        if isinstance(connector, EnsuresCustomers):
            return connector.ensure_customers
        return None

    def _record(
        self,
        target: str,
        connector: InvoiceTarget,
        account: str,
        outcome: Customer | Resolved | ConnectorError,
    ) -> Customer | ConnectorError:
        """Link a resolved customer (method and evidence kept), or pass the error on."""
        if isinstance(outcome, ConnectorError):
            self.stop(target, outcome)
            return outcome
        method: str | None = None
        evidence: dict[str, Any] | None = None
        if isinstance(outcome, Resolved):
            method, evidence = outcome.method, outcome.evidence
            outcome = outcome.customer
        if not outcome.external_id:
            return outcome
        if method == MATCHED:
            owners = self.ledger.customer_owners(target, [outcome.external_id])
            held = set(owners.get(outcome.external_id, ())) - {account}
            if held:
                candidate = Candidate(id=outcome.external_id, name=outcome.name)
                reason = "it is already linked to another account"
                decision = Ambiguous(
                    (candidate,), reason, {outcome.external_id: tuple(sorted(held))}
                )
                return ambiguous_error(target, target, outcome, decision)
        self.ledger.link_customer(
            target, account, outcome.external_id, outcome.name, method=method, evidence=evidence
        )
        return outcome

    def _one(self, connector: InvoiceTarget, wanted: Customer) -> Customer | ConnectorError:
        target = connector.target
        linked = self.ledger.customer_link(target, wanted.account_id)
        if linked is not None:
            return wanted.model_copy(update={"external_id": linked})
        if target in self.summary.stopped:
            return ConnectorError(
                system=target,
                error_class=ErrorClass.AUTH,
                code=CONNECTOR_STOPPED,
                message=self.summary.stopped[target],
            )
        if self.fence is not None:
            self.fence.check()  # ensure_customer may create one: a vendor write
        try:
            customer = connector.ensure_customer(wanted)
        except ConnectorError as error:
            self.stop(target, error)
            return error
        if customer.external_id:
            with self.ledger.fenced(self.fence):
                self.ledger.link_customer(
                    target, wanted.account_id, customer.external_id, customer.name
                )
        return customer
