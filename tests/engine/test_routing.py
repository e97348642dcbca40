"""One invoice per deal across all targets (issue 16): a lost create answer in one
target, then the deal routed to another (the deal's routing field, the default target,
the routing values), and back, with a crash in the same window."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from billsync.core.canonical import Deal, DiscrepancyKind
from billsync.core.idempotency import invoice_key
from billsync.mappings.loader import load_mappings
from billsync.mappings.plan import Planner
from billsync.sync.engine.cycle import Engine, run_cycle
from billsync.sync.engine.failures import INVOICE, RetryPolicy
from billsync.sync.engine.routing import RerouteRefused, reroute
from billsync.sync.ledger import Ledger, work_subject
from billsync.sync.ledger.models import DealState, WorkStatus
from tests.engine.fakes import Clock, Crash, FakeSource, FakeTarget, make_deal, transient

QBO, STRIPE = "quickbooks", "stripe"


def engine(
    ledger: Ledger,
    source: FakeSource,
    targets: dict[str, FakeTarget],
    clock: Clock,
    *,
    default_target: str = QBO,
    routing: dict[str, list[str]] | None = None,
) -> Engine:
    mapping = load_mappings()
    if routing is not None:
        spec = mapping.spec.model_copy(
            update={"routing": mapping.spec.routing.model_copy(update={"values": routing})}
        )
        mapping = dataclasses.replace(mapping, spec=spec)
    planner = Planner(
        mapping=mapping,
        catalogs={name: target.catalog() for name, target in targets.items()},
        default_target=default_target,
        idempotency_key=invoice_key,
    )
    return Engine(
        ledger=ledger,
        source=source,
        targets=targets,
        feeds={},
        planner=planner,
        mapping=mapping,
        policy=RetryPolicy(base_s=1, cap_s=60, max_attempts=3),
        now=clock,
        batch_size=3,
    )


def edited(deal: Deal, **changes: object) -> Deal:
    """The deal as Salesforce returns it after an edit: a new SystemModstamp."""
    stamp: datetime = deal.revision + timedelta(hours=1)
    return deal.model_copy(update={"revision": stamp, **changes})


def lost_answer(target: FakeTarget, deal: Deal) -> None:
    """The create reaches the target, the answer never comes back."""
    target.error_after_create[deal.id] = transient("read timed out")


def live(*targets: FakeTarget) -> dict[str, int]:
    counts: dict[str, int] = {}
    for target in targets:
        for deal_id, n in target.per_deal().items():
            counts[deal_id] = counts.get(deal_id, 0) + n
    return counts


def routing_discrepancies(ledger: Ledger) -> list:
    return ledger.open_discrepancies(DiscrepancyKind.ROUTING_CHANGED_AFTER_INVOICE)


# --- a lost answer in QuickBooks, then the deal goes to Stripe -----------------------


@pytest.mark.parametrize("how", ["field", "default_target", "routing_values"])
def test_lost_answer_then_rerouted_adopts_in_the_first_target(
    ledger: Ledger, clock: Clock, how: str
) -> None:
    hint = "" if how == "default_target" else "QuickBooks"
    deal = make_deal(1, target_hint=hint)
    qbo, stripe = FakeTarget(QBO), FakeTarget(STRIPE)
    targets = {QBO: qbo, STRIPE: stripe}
    lost_answer(qbo, deal)
    source = FakeSource([deal])
    first = run_cycle(engine(ledger, source, targets, clock))
    assert first.failures == 1 and len(qbo.invoices) == 1  # it exists; billsync doesn't know

    clock.advance(minutes=10)
    kw: dict = {}
    if how == "field":
        source.deals = [edited(deal, target_hint="Stripe")]
    elif how == "default_target":
        source.deals = [edited(deal)]
        kw["default_target"] = STRIPE
    else:
        source.deals = [edited(deal)]
        kw["routing"] = {STRIPE: ["Stripe", "QuickBooks"], QBO: ["QBO"]}
    second = run_cycle(engine(ledger, source, targets, clock, **kw))
    assert stripe.create_calls == 0 and stripe.invoices == {}
    assert live(qbo, stripe) == {deal.id: 1}
    assert second.invoices_adopted == 1
    record = ledger.get_deal(deal.id, QBO)
    assert record is not None and record.state == DealState.INVOICED
    assert ledger.get_deal(deal.id, STRIPE) is None
    [found] = routing_discrepancies(ledger)
    assert (found.target, found.expected, found.actual) == (QBO, QBO, STRIPE)
    # Later runs (the retry stage included) create nothing anywhere.
    clock.advance(hours=1)
    run_cycle(engine(ledger, source, targets, clock, **kw))
    assert live(qbo, stripe) == {deal.id: 1} and stripe.create_calls == 0


@pytest.mark.parametrize("how", ["field", "default_target", "routing_values"])
def test_failed_attempt_confirmed_absent_is_abandoned_audited_then_created_elsewhere(
    ledger: Ledger, clock: Clock, how: str
) -> None:
    hint = "" if how == "default_target" else "QuickBooks"
    deal = make_deal(1, target_hint=hint)
    qbo, stripe = FakeTarget(QBO), FakeTarget(STRIPE)
    targets = {QBO: qbo, STRIPE: stripe}
    qbo.errors[deal.id] = transient("connection reset")  # refused before creating
    source = FakeSource([deal])
    run_cycle(engine(ledger, source, targets, clock))
    assert qbo.invoices == {}
    item = ledger.find_work(INVOICE, deal.id)
    assert item is not None and item.payload["target"] == QBO

    clock.advance(minutes=10)
    kw: dict = {}
    if how == "field":
        source.deals = [edited(deal, target_hint="Stripe")]
    elif how == "default_target":
        source.deals = [edited(deal)]
        kw["default_target"] = STRIPE
    else:
        source.deals = [edited(deal)]
        kw["routing"] = {STRIPE: ["Stripe", "QuickBooks"], QBO: ["QBO"]}
    summary = run_cycle(engine(ledger, source, targets, clock, **kw))
    assert summary.invoices_created == 1
    assert live(qbo, stripe) == {deal.id: 1} and len(stripe.invoices) == 1
    old = ledger.get_deal(deal.id, QBO)
    assert old is not None and old.state == DealState.ABANDONED
    actions = [a.action for a in ledger.audit_for(f"deal:{deal.id}")]
    assert actions == ["intent.abandoned", "invoice.created"]
    abandoned = ledger.audit_for(f"deal:{deal.id}")[0]
    assert abandoned.details["routed_to"] == STRIPE and "not there" in abandoned.details["note"]
    # The QuickBooks retry item was resolved with that note, not closed silently.
    item = ledger.find_work(INVOICE, deal.id)
    assert item is not None and item.status == WorkStatus.RESOLVED
    [resolved] = [a for a in ledger.audit_for(work_subject(item.id)) if a.action == "work.resolve"]
    assert "not there" in resolved.details["note"] and resolved.actor.startswith("run:")
    # And back: routed to QuickBooks again, it is invoiced in Stripe already.
    clock.advance(hours=1)
    source.deals = [edited(source.deals[0], target_hint="QuickBooks")]
    run_cycle(engine(ledger, source, targets, clock))
    assert live(qbo, stripe) == {deal.id: 1} and qbo.invoices == {}


def test_lost_answer_in_stripe_then_back_to_quickbooks(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(2, target_hint="Stripe")
    qbo, stripe = FakeTarget(QBO), FakeTarget(STRIPE)
    targets = {QBO: qbo, STRIPE: stripe}
    lost_answer(stripe, deal)
    source = FakeSource([deal])
    run_cycle(engine(ledger, source, targets, clock))
    clock.advance(minutes=10)
    source.deals = [edited(deal, target_hint="QuickBooks")]
    run_cycle(engine(ledger, source, targets, clock))
    assert qbo.create_calls == 0 and live(qbo, stripe) == {deal.id: 1}
    [found] = routing_discrepancies(ledger)
    assert (found.target, found.actual) == (STRIPE, QBO)


@pytest.mark.parametrize("where", ["crash_after_create", "crash_before_create"])
def test_crash_in_the_old_target_then_rerouted(ledger: Ledger, clock: Clock, where: str) -> None:
    deal = make_deal(3)
    qbo, stripe = FakeTarget(QBO), FakeTarget(STRIPE)
    targets = {QBO: qbo, STRIPE: stripe}
    getattr(qbo, where).add(deal.id)
    source = FakeSource([deal])
    with pytest.raises(Crash):
        run_cycle(engine(ledger, source, targets, clock))
    clock.advance(minutes=5)  # the crashed run's lease expires
    source.deals = [edited(deal, target_hint="Stripe")]
    run_cycle(engine(ledger, source, targets, clock))
    assert live(qbo, stripe) == {deal.id: 1}
    if where == "crash_after_create":
        assert stripe.invoices == {} and routing_discrepancies(ledger)
    else:
        assert qbo.invoices == {} and len(stripe.invoices) == 1


def test_crash_in_the_new_target_after_abandoning_the_old(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(4)
    qbo, stripe = FakeTarget(QBO), FakeTarget(STRIPE)
    targets = {QBO: qbo, STRIPE: stripe}
    qbo.errors[deal.id] = transient()
    source = FakeSource([deal])
    run_cycle(engine(ledger, source, targets, clock))
    source.deals = [edited(deal, target_hint="Stripe")]
    stripe.crash_after_create.add(deal.id)
    clock.advance(minutes=5)
    with pytest.raises(Crash):
        run_cycle(engine(ledger, source, targets, clock))
    clock.advance(minutes=5)
    summary = run_cycle(engine(ledger, source, targets, clock))
    assert summary.invoices_adopted == 1
    assert live(qbo, stripe) == {deal.id: 1} and qbo.invoices == {}
    # The old target's retry item never creates there.
    clock.advance(hours=2)
    run_cycle(engine(ledger, source, targets, clock))
    assert qbo.create_calls == 1 and qbo.invoices == {}


def test_lookup_failure_in_the_old_target_blocks_the_new_one(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(5)
    qbo, stripe = FakeTarget(QBO), FakeTarget(STRIPE)
    targets = {QBO: qbo, STRIPE: stripe}
    lost_answer(qbo, deal)
    source = FakeSource([deal])
    run_cycle(engine(ledger, source, targets, clock))
    qbo.find_errors[deal.id] = transient("QuickBooks is down")
    source.deals = [edited(deal, target_hint="Stripe")]
    summary = run_cycle(engine(ledger, source, targets, clock))
    assert summary.failures >= 1 and stripe.create_calls == 0


# --- the operator's reroute ------------------------------------------------------------


def test_reroute_refuses_a_live_invoice_then_moves_a_voided_one(
    ledger: Ledger, clock: Clock
) -> None:
    deal = make_deal(6)
    qbo, stripe = FakeTarget(QBO), FakeTarget(STRIPE)
    targets = {QBO: qbo, STRIPE: stripe}
    source = FakeSource([deal])
    run_cycle(engine(ledger, source, targets, clock))
    [invoice] = qbo.invoices
    with pytest.raises(RerouteRefused, match="void it in quickbooks first"):
        reroute(ledger, deal.id, STRIPE, note="customer pays by card", actor="cli:ops", now=clock())
    qbo.void(invoice)
    ledger.upsert_invoice(
        target=QBO,
        external_id=invoice,
        currency="USD",
        total=qbo.invoices[invoice].total,
        status="void",
        deal_id=deal.id,
    )  # what `billsync reconcile` records
    moved = reroute(
        ledger, deal.id, STRIPE, note="customer pays by card", actor="cli:ops", now=clock()
    )
    assert [r.state for r in moved.closed] == [DealState.REROUTED]
    audit = ledger.audit_for(f"deal:{deal.id}")[-1]
    assert audit.action == "deal.rerouted" and audit.actor == "cli:ops"
    assert audit.details["invoice"] == invoice and audit.details["to"] == STRIPE
    # The next run's retry stage reads the deal again and bills it where it now routes.
    source.deals = [edited(deal, target_hint="Stripe")]
    run_cycle(engine(ledger, FakeSource(source.deals), targets, clock))
    assert len(stripe.invoices) == 1
    assert [ref.status for ref in qbo.invoices.values()] == ["void"]


def test_reroute_refuses_an_unresolved_attempt(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(7)
    qbo, stripe = FakeTarget(QBO), FakeTarget(STRIPE)
    lost_answer(qbo, deal)
    run_cycle(engine(ledger, FakeSource([deal]), {QBO: qbo, STRIPE: stripe}, clock))
    with pytest.raises(RerouteRefused, match="unresolved"):
        reroute(ledger, deal.id, STRIPE, note="n", actor="cli:ops", now=clock())
    with pytest.raises(RerouteRefused, match="knows no deal"):
        reroute(ledger, "006NOPE", STRIPE, note="n", actor="cli:ops", now=clock())
