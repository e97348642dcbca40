"""The run cycle against fakes: exactly once under crashes, failures and re-runs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from billsync.core.idempotency import invoice_key
from billsync.mappings.loader import load_mappings
from billsync.mappings.plan import Planner
from billsync.sync.engine.cycle import LeaseHeld, deals_cursor, run_cycle
from billsync.sync.engine.fingerprint import deal_fingerprint
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import DealState, WorkStatus
from tests.engine.fakes import (
    Clock,
    Crash,
    FakeSource,
    FakeTarget,
    auth,
    build,
    invalid,
    make_deal,
    transient,
)


def run(ledger: Ledger, source: FakeSource, target: FakeTarget, clock: Clock, **kw: object):
    return run_cycle(build(ledger, source, target, clock), **kw)  # type: ignore[arg-type]


def states(ledger: Ledger, deals: list) -> list[str | None]:
    out = []
    for deal in deals:
        record = ledger.get_deal(deal.id, "quickbooks")
        out.append(None if record is None else record.state)
    return out


def test_happy_path_then_nothing_to_do(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(n) for n in range(7)]
    source, target = FakeSource(deals), FakeTarget()
    summary = run(ledger, source, target, clock)
    assert summary.exit_code == 0
    assert summary.deals_seen == 7 and summary.invoices_created == 7
    assert target.per_deal() == {d.id: 1 for d in deals}
    assert states(ledger, deals) == [DealState.INVOICED] * 7
    assert target.customer_calls == 3  # three accounts, each resolved once
    assert ledger.get_cursor(deals_cursor("salesforce")) is not None
    invoice = ledger.invoice_for_deal(deals[0].id, "quickbooks")
    assert invoice is not None and invoice.total == Decimal("100.00")
    assert [a.action for a in ledger.audit_for(f"deal:{deals[0].id}")] == ["invoice.created"]

    calls_before = (target.create_calls, target.customer_calls)
    again = run(ledger, source, target, clock)
    assert again.deals_seen == 0 and (target.create_calls, target.customer_calls) == calls_before


def test_rereading_every_deal_creates_nothing_new(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(n) for n in range(4)]
    source, target = FakeSource(deals), FakeTarget()
    run(ledger, source, target, clock)
    # Salesforce restamps every written-back deal: same content, new SystemModstamp.
    source.deals = [
        d.model_copy(update={"revision": d.revision + timedelta(days=1)}) for d in deals
    ]
    summary = run(ledger, source, target, clock)
    assert summary.deals_seen == 4 and summary.invoices_created == 0
    assert summary.discrepancies == 0
    assert target.per_deal() == {d.id: 1 for d in deals}


@pytest.mark.parametrize("where", ["crash_before_create", "crash_after_create"])
def test_crash_around_the_create_call_never_duplicates(
    ledger: Ledger, clock: Clock, where: str
) -> None:
    deals = [make_deal(n) for n in range(5)]
    source, target = FakeSource(deals), FakeTarget()
    getattr(target, where).add(deals[3].id)
    with pytest.raises(Crash):
        run(ledger, source, target, clock)
    assert ledger.get_deal(deals[3].id, "quickbooks").state == DealState.INVOICING  # type: ignore[union-attr]
    ledger.release_lease(
        "run", build(ledger, source, target, clock).holder
    )  # the killed run's lease
    ledger.engine.dispose()
    clock.advance(minutes=20)  # the dead run's lease expires
    summary = run(ledger, source, target, clock)
    assert target.per_deal() == {d.id: 1 for d in deals}
    assert states(ledger, deals) == [DealState.INVOICED] * 5
    if where == "crash_after_create":
        assert summary.invoices_adopted == 1


def test_a_half_built_invoice_is_handed_to_the_retried_create(ledger: Ledger, clock: Clock) -> None:
    """A crash left a draft (Stripe builds an invoice in steps) and the create keys have
    expired since (Stripe keeps them 24 h): the retry must not adopt the draft, and must
    give it to the create, which resumes it instead of making a second invoice."""
    deal = make_deal(1)
    source, target = FakeSource([deal]), FakeTarget()
    target.crash_after_create.add(deal.id)
    with pytest.raises(Crash):
        run(ledger, source, target, clock)
    [external] = target.invoices
    target.invoices[external] = target.invoices[external].model_copy(update={"status": "draft"})
    target.by_key.clear()  # the idempotency keys have expired
    ledger.release_lease("run", build(ledger, source, target, clock).holder)
    clock.advance(days=2)
    run(ledger, source, target, clock)
    assert target.found_passed[-1] == {deal.id: [target.invoices[external]]}


def test_timeout_after_processing_is_adopted_on_retry(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(n) for n in range(3)]
    source, target = FakeSource(deals), FakeTarget()
    target.error_after_create[deals[1].id] = transient("read timed out")
    first = run(ledger, source, target, clock)
    assert first.exit_code == 1 and first.failures == 1
    assert ledger.get_deal(deals[1].id, "quickbooks").state == DealState.FAILED  # type: ignore[union-attr]
    item = ledger.find_work("invoice", deals[1].id)
    assert item is not None and item.status == WorkStatus.PENDING
    assert item.last_error_class == "transient"
    clock.advance(minutes=5)
    second = run(ledger, source, target, clock)
    assert second.invoices_adopted == 1 and second.exit_code == 0
    assert target.per_deal() == {d.id: 1 for d in deals}
    assert ledger.find_work("invoice", deals[1].id).status == WorkStatus.DONE  # type: ignore[union-attr]


def test_transient_failure_gives_up_after_the_attempt_limit(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(1)]
    source, target = FakeSource(deals), FakeTarget()
    for attempt in range(5):
        target.errors[deals[0].id] = transient(f"boom {attempt}")
        run(ledger, source, target, clock)
        clock.advance(hours=1)
    item = ledger.find_work("invoice", deals[0].id)
    assert item is not None and item.status == WorkStatus.DEAD
    assert target.invoices == {}


def test_rejected_deal_fails_alone_and_is_fixed_by_a_change(ledger: Ledger, clock: Clock) -> None:
    good = [make_deal(n) for n in range(3)]
    bad = make_deal(9, target_hint="Xero")
    source, target = FakeSource([*good, bad]), FakeTarget()
    summary = run(ledger, source, target, clock)
    assert summary.exit_code == 1 and summary.needs_attention == 1
    assert summary.invoices_created == 3
    item = ledger.find_work("invoice", bad.id)
    assert item is not None and item.status == WorkStatus.DEAD
    assert "'Xero' is not a known billing platform" in (item.last_error_message or "")
    assert bad.id in (item.last_error_message or "")
    # Someone fixes the deal in Salesforce: it is read again and invoiced.
    source.deals = [
        *good,
        bad.model_copy(
            update={"target_hint": "QuickBooks", "revision": bad.revision + timedelta(hours=1)}
        ),
    ]
    clock.advance(minutes=1)
    fixed = run(ledger, source, target, clock)
    assert fixed.exit_code == 0 and fixed.invoices_created == 1
    assert ledger.find_work("invoice", bad.id).status == WorkStatus.RESOLVED  # type: ignore[union-attr]


def test_permanent_target_error_needs_attention(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(n) for n in range(2)]
    source, target = FakeSource(deals), FakeTarget()
    target.errors[deals[0].id] = invalid()
    summary = run(ledger, source, target, clock)
    assert summary.needs_attention == 1 and summary.invoices_created == 1
    assert ledger.get_deal(deals[0].id, "quickbooks").state == DealState.NEEDS_ATTENTION  # type: ignore[union-attr]
    assert ledger.find_work("invoice", deals[0].id).status == WorkStatus.DEAD  # type: ignore[union-attr]


def test_auth_failure_stops_the_target_and_loses_nothing(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(n) for n in range(4)]
    source, target = FakeSource(deals), FakeTarget()
    target.errors[deals[0].id] = auth()
    summary = run(ledger, source, target, clock)
    # Refused credentials exit 2 even when some invoices went out first (issue 16).
    assert "quickbooks" in summary.stopped and summary.exit_code == 2
    created_before = len(target.invoices)
    assert created_before < 4
    clock.advance(hours=1)
    run(ledger, source, target, clock)
    assert target.per_deal() == {d.id: 1 for d in deals}


def test_deal_changed_after_invoice_is_flagged_once(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(1)
    source, target = FakeSource([deal]), FakeTarget()
    run(ledger, source, target, clock)
    changed = deal.model_copy(
        update={"amount": Decimal("150.00"), "revision": deal.revision + timedelta(hours=1)}
    )
    source.deals = [changed]
    first = run(ledger, source, target, clock)
    source.deals = [changed.model_copy(update={"revision": changed.revision + timedelta(hours=1)})]
    second = run(ledger, source, target, clock)
    assert first.discrepancies == 1 and second.discrepancies == 0
    (found,) = ledger.open_discrepancies()
    assert found.kind == "deal_changed_after_invoice"
    # Amounts on each side, never hashes: the lines still add up to 100.00.
    assert found.expected == "amount 100.00 USD, 1 line (invoice INV1)"
    assert found.actual == "amount 100.00 USD, 1 line (deal Amount 150.00)"
    assert target.per_deal() == {deal.id: 1}


def test_deal_changed_after_invoice_shows_amounts_and_lines_on_each_side(
    ledger: Ledger, clock: Clock
) -> None:
    deal = make_deal(1)
    source, target = FakeSource([deal]), FakeTarget()
    run(ledger, source, target, clock)
    bigger = make_deal(1, amount_lines=2, stamp=deal.revision + timedelta(hours=1))
    source.deals = [bigger]
    run(ledger, source, target, clock)
    (found,) = ledger.open_discrepancies()
    assert (found.expected, found.actual) == (
        "amount 100.00 USD, 1 line (invoice INV1)",
        "amount 200.00 USD, 2 lines",
    )
    # What reconcile needs to close it once the invoice is at the deal's new content.
    assert found.details["revision"] == deal_fingerprint(bigger)
    assert found.details["invoice"] == "INV1"


def test_total_mismatch_is_a_discrepancy(ledger: Ledger, clock: Clock) -> None:
    source, target = FakeSource([make_deal(1)]), FakeTarget(total_offset=Decimal("8.25"))
    summary = run(ledger, source, target, clock)
    (found,) = ledger.open_discrepancies()
    assert summary.discrepancies == 1
    assert (found.kind, found.expected, found.actual) == (
        "invoice_total_mismatch",
        "100.00 USD",
        "108.25 USD",
    )


def test_source_failure_keeps_what_was_read(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(n) for n in range(5)]
    source, target = FakeSource(deals, fail_after=4), FakeTarget()
    summary = run(ledger, source, target, clock)
    assert summary.stopped == {"salesforce": "quota floor reached"}
    assert summary.invoices_created == 4
    source.fail_after = None
    run(ledger, source, target, clock)
    assert target.per_deal() == {d.id: 1 for d in deals}


def test_lease_held_by_another_run(ledger: Ledger, clock: Clock) -> None:
    assert ledger.acquire_lease("run", "someone-else", timedelta(minutes=15))
    with pytest.raises(LeaseHeld):
        run(ledger, FakeSource([]), FakeTarget(), clock)


def test_runs_are_recorded(ledger: Ledger, clock: Clock) -> None:
    summary = run(ledger, FakeSource([make_deal(1)]), FakeTarget(), clock)
    (recorded,) = ledger.recent_runs(5)
    assert recorded.id == summary.run_id and recorded.outcome == "clean"
    assert recorded.summary is not None and recorded.summary["invoices_created"] == 1
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from leases where holder != ''")).scalar() >= 0


def test_mapping_change_re_arms_and_re_reads_a_rejected_deal(
    ledger: Ledger, clock: Clock, tmp_path: Path
) -> None:
    bad = make_deal(5, target_hint="Xero")
    source, target = FakeSource([bad]), FakeTarget()
    assert run(ledger, source, target, clock).needs_attention == 1
    assert run(ledger, source, target, clock).deals_seen == 0  # nothing changed: not re-read
    custom = tmp_path / "routing.yaml"
    custom.write_text("routing:\n  values:\n    quickbooks: [QuickBooks, Xero]\n")
    engine = build(ledger, source, target, clock)
    mapping = load_mappings([custom])
    engine.mapping = mapping
    engine.planner = Planner(
        mapping=mapping,
        catalogs={"quickbooks": target.catalog()},
        default_target="quickbooks",
        idempotency_key=invoice_key,
    )
    summary = run_cycle(engine)
    assert summary.invoices_created == 1 and summary.exit_code == 0
    assert target.per_deal() == {bad.id: 1}
    assert ledger.find_work("invoice", bad.id).status in ("done", "resolved")  # type: ignore[union-attr]


def test_two_targets_are_invoiced_side_by_side(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(n, target_hint="Stripe" if n % 2 else "QuickBooks") for n in range(12)]
    quickbooks, stripe = FakeTarget(), FakeTarget(target="stripe")
    engine = build(ledger, FakeSource(deals), quickbooks, clock)
    engine.targets = {"quickbooks": quickbooks, "stripe": stripe}
    engine.planner = Planner(
        mapping=engine.mapping,
        catalogs={"quickbooks": quickbooks.catalog(), "stripe": stripe.catalog()},
        default_target="quickbooks",
        idempotency_key=invoice_key,
    )
    summary = run_cycle(engine)
    assert summary.invoices_created == 12 and summary.exit_code == 0
    assert quickbooks.per_deal() == {d.id: 1 for d in deals[0::2]}
    assert stripe.per_deal() == {d.id: 1 for d in deals[1::2]}


def test_reconcile_stage_runs_only_when_asked(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(1)
    source, target = FakeSource([deal]), FakeTarget()
    run(ledger, source, target, clock)
    invoice = target.find_invoices(deal.id)[0]
    del target.invoices[invoice.external_id]  # deleted in QuickBooks out of band
    assert run(ledger, source, target, clock).discrepancies == 0  # routine run: no read-back
    summary = run(ledger, source, target, clock, stages=("reconcile",))
    assert summary.discrepancies == 1
    assert [d.kind for d in ledger.open_discrepancies()] == ["invoice_missing_in_target"]
