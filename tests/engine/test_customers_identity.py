"""Issue 16, customer identity, where the engine decides: which customer each deal is
invoiced on when accounts share a name or an AP email, when an unrelated customer
carries the account's name, and after an operator links an ambiguous one. The fake
target applies the shared rule (`billsync.core.customer_identity.decide`) to an in-memory book,
as both connectors do; the engine passes the ledger's links and records how each link
was made. Every test ends with no invoice on a wrong customer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from billsync.core.canonical import Account, Address, Customer, InvoiceDraft, InvoiceRef
from billsync.core.customer_identity import (
    CREATED,
    MATCHED,
    Adopt,
    Ambiguous,
    Candidate,
    CustomerOwners,
    NameTaken,
    Resolved,
    ambiguous_error,
    decide,
)
from billsync.core.idempotency import invoice_key
from billsync.core.protocols import ConnectorError
from billsync.mappings.loader import load_mappings
from billsync.mappings.plan import Planner
from billsync.sync.cli.customers_cmd import requeue_waiting
from billsync.sync.engine.cycle import Engine, run_cycle
from billsync.sync.engine.failures import RetryPolicy
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import DealState
from tests.engine.fakes import Clock, FakeSource, FakeTarget, make_deal

QBO = "quickbooks"
SPRINGFIELD = Address(line1="1 Main St", city="Springfield", postal_code="62701", country="US")
SHELBYVILLE = Address(line1="9 Elm St", city="Shelbyville", postal_code="62565", country="US")


@dataclass
class MatchingTarget(FakeTarget):
    """A target with existing customers, resolving under the identity rule."""

    book: dict[str, Candidate] = field(default_factory=dict)
    invoiced_on: dict[str, str] = field(default_factory=dict)  # deal -> customer id
    trust_the_name: bool = False  # a careless connector: adopts on the name alone

    def resolve_customers(
        self, customers: Sequence[Customer], owners: CustomerOwners
    ) -> Mapping[str, Resolved | ConnectorError]:
        out: dict[str, Resolved | ConnectorError] = {}
        for customer in customers:
            found = [c for c in self.book.values() if c.name.casefold() == customer.name.casefold()]
            held = {k: set(v) for k, v in owners([c.id for c in found]).items()}
            decision = decide(customer, found, names=[customer.name], owners=held)
            if self.trust_the_name and found:
                decision = Adopt(found[0], {"name": found[0].name})
            if isinstance(decision, Adopt):
                adopted = customer.model_copy(update={"external_id": decision.candidate.id})
                out[customer.account_id] = Resolved(adopted, MATCHED, decision.evidence)
            elif isinstance(decision, Ambiguous):
                out[customer.account_id] = ambiguous_error(QBO, "QuickBooks", customer, decision)
            else:
                suffix = f" ({customer.account_id[-6:]})" if isinstance(decision, NameTaken) else ""
                out[customer.account_id] = self._create(customer, customer.name + suffix)
        return out

    def _create(self, customer: Customer, name: str) -> Resolved:
        cid = f"C{len(self.book) + 1}"
        postal = customer.billing_address.postal_code if customer.billing_address else None
        self.book[cid] = Candidate(
            cid, name, customer.email, postal, account_id=customer.account_id
        )
        made = customer.model_copy(update={"external_id": cid, "name": name})
        return Resolved(made, CREATED, {"display_name": name} if name != customer.name else None)

    def create_invoice(self, draft: InvoiceDraft) -> InvoiceRef:
        assert draft.customer.external_id, "invoiced without a customer"
        self.invoiced_on[draft.deal_id] = draft.customer.external_id
        return super().create_invoice(draft)


def engine(ledger: Ledger, source: FakeSource, target: FakeTarget, clock: Clock) -> Engine:
    mapping = load_mappings()
    planner = Planner(
        mapping=mapping,
        catalogs={QBO: target.catalog()},
        default_target=QBO,
        idempotency_key=invoice_key,
    )
    return Engine(
        ledger=ledger,
        source=source,
        targets={QBO: target},
        feeds={},
        planner=planner,
        mapping=mapping,
        policy=RetryPolicy(base_s=1, cap_s=60, max_attempts=3),
        now=clock,
        batch_size=10,
    )


def deal(n: int, account: str, name: str, email: str, address: Address) -> Any:
    buyer = Account(id=account, name=name, billing_email=email, billing_address=address)
    return make_deal(n, account=buyer)


def link_of(ledger: Ledger, account: str) -> Any:
    [link] = ledger.customer_links(QBO, account)
    return link


def test_two_globex_accounts_in_different_cities_get_two_customers(
    ledger: Ledger, clock: Clock
) -> None:
    first = deal(1, "001A", "Globex Corporation", "ap@globex-spring.example", SPRINGFIELD)
    second = deal(2, "001B", "Globex Corporation", "ap@globex-shelby.example", SHELBYVILLE)
    target = MatchingTarget()
    run_cycle(engine(ledger, FakeSource([first]), target, clock))
    run_cycle(engine(ledger, FakeSource([first, second]), target, clock))
    assert target.invoiced_on == {first.id: "C1", second.id: "C2"}
    assert target.book["C2"].name == "Globex Corporation (001B)"  # disambiguated
    assert (link_of(ledger, "001A").method, link_of(ledger, "001B").method) == (CREATED, CREATED)
    assert ledger.shared_customers() == []


def test_an_existing_customer_matching_only_by_name_waits_then_the_operator_links_it(
    ledger: Ledger, clock: Clock
) -> None:
    target = MatchingTarget(book={"C9": Candidate("C9", "Globex Corporation")})
    globex = deal(1, "001B", "Globex Corporation", "ap@globex-shelby.example", SHELBYVILLE)
    source = FakeSource([globex])
    run_cycle(engine(ledger, source, target, clock))
    assert target.invoiced_on == {}
    record = ledger.get_deal(globex.id, QBO)
    assert record is not None and record.state == DealState.NEEDS_ATTENTION
    assert record.last_error is not None
    assert "C9 'Globex Corporation'" in record.last_error
    assert 'billsync customers link quickbooks 001B C9 --note "…"' in record.last_error
    assert ledger.customer_links(QBO, "001B") == []
    # The operator decides it is the same company (what `billsync customers link` does).
    ledger.link_customer(QBO, "001B", "C9", actor="ops:ana", note="same company, confirmed")
    assert requeue_waiting(ledger, QBO, "001B", "ops:ana", "same company, confirmed")
    clock.advance(seconds=5)
    run_cycle(engine(ledger, source, target, clock))
    assert target.invoiced_on == {globex.id: "C9"}
    assert link_of(ledger, "001B").method == "operator"


def test_an_account_renamed_initech_is_not_billed_on_an_unrelated_initech(
    ledger: Ledger, clock: Clock
) -> None:
    unrelated = Candidate("C7", "Initech", "billing@initech-holdings.example", "78701")
    target = MatchingTarget(book={"C7": unrelated})
    renamed = deal(1, "001R", "Initech", "ap@initech-labs.example", SPRINGFIELD)
    run_cycle(engine(ledger, FakeSource([renamed]), target, clock))
    assert target.invoiced_on == {}
    record = ledger.get_deal(renamed.id, QBO)
    assert record is not None and record.state == DealState.NEEDS_ATTENTION
    assert "only the name agrees" in (record.last_error or "")


def test_two_accounts_sharing_an_ap_email_are_not_merged(ledger: Ledger, clock: Clock) -> None:
    acme = deal(1, "001A", "Acme Ltd", "ap@shared-services.example", SPRINGFIELD)
    beta = deal(2, "001B", "Beta LLC", "ap@shared-services.example", SPRINGFIELD)
    target = MatchingTarget()
    run_cycle(engine(ledger, FakeSource([acme, beta]), target, clock))
    assert target.invoiced_on == {acme.id: "C1", beta.id: "C2"}


def test_a_full_match_is_adopted_and_the_link_says_why(ledger: Ledger, clock: Clock) -> None:
    existing = Candidate("C5", "Globex Corporation", "ap@globex.example", "62701")
    target = MatchingTarget(book={"C5": existing})
    globex = deal(1, "001A", "Globex Corporation", "ap@globex.example", SPRINGFIELD)
    run_cycle(engine(ledger, FakeSource([globex]), target, clock))
    assert target.invoiced_on == {globex.id: "C5"}
    link = link_of(ledger, "001A")
    assert link.method == MATCHED
    assert link.evidence == {
        "name": "Globex Corporation",
        "email": "ap@globex.example",
        "postal_code": "62701",
    }


def test_the_engine_refuses_a_match_already_linked_to_another_account(
    ledger: Ledger, clock: Clock
) -> None:
    """Even from a connector that adopts on the name alone, the ledger's check stops
    a second account from being billed on the first one's customer."""
    target = MatchingTarget(trust_the_name=True)
    first = deal(1, "001A", "Globex Corporation", "ap@globex-spring.example", SPRINGFIELD)
    second = deal(2, "001B", "Globex Corporation", "ap@globex-shelby.example", SHELBYVILLE)
    run_cycle(engine(ledger, FakeSource([first]), target, clock))
    run_cycle(engine(ledger, FakeSource([first, second]), target, clock))
    assert target.invoiced_on == {first.id: "C1"}
    record = ledger.get_deal(second.id, QBO)
    assert record is not None and record.state == DealState.NEEDS_ATTENTION
    assert "linked to account 001A" in (record.last_error or "")
    assert ledger.customer_links(QBO, "001B") == []
