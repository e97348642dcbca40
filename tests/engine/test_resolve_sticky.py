"""`failures resolve` on a rejected deal stays resolved (issue 16) until the deal's
content or the mapping changes; before, the next run that read the deal failed it again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from billsync.core.idempotency import invoice_key
from billsync.mappings.loader import load_mappings
from billsync.mappings.plan import Planner
from billsync.sync.engine.cycle import deals_cursor, run_cycle
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import WorkStatus
from tests.engine.fakes import Clock, FakeSource, FakeTarget, build, invalid, make_deal


def rejected_then_resolved(ledger: Ledger, clock: Clock, source: FakeSource, deal_id: str) -> int:
    target = FakeTarget()
    first = run_cycle(build(ledger, source, target, clock))
    assert first.needs_attention == 1
    item = ledger.find_work("invoice", deal_id)
    assert item is not None and item.status == WorkStatus.DEAD
    assert ledger.resolve_work(item.id, "ops@example.com", "handled by hand")
    return item.id


def reread(ledger: Ledger) -> None:
    """The deal comes round again unchanged (the overlap window, a --since re-read, a
    write-back that bumped SystemModstamp)."""
    ledger.set_cursor(deals_cursor("salesforce"), "")


def test_a_resolved_rejection_stays_resolved_when_the_deal_is_read_again(
    ledger: Ledger, clock: Clock
) -> None:
    bad = make_deal(9, target_hint="Xero")
    source = FakeSource([bad])
    item_id = rejected_then_resolved(ledger, clock, source, bad.id)
    for _ in range(2):
        reread(ledger)
        clock.advance(hours=1)
        summary = run_cycle(build(ledger, source, FakeTarget(), clock))
        assert summary.deals_seen == 1
        assert summary.needs_attention == 0 and summary.exit_code == 0
        assert ledger.get_work(item_id).status == WorkStatus.RESOLVED  # type: ignore[union-attr]


def test_a_resolved_target_rejection_stays_resolved(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(4)
    source = FakeSource([deal])
    target = FakeTarget()
    target.errors[deal.id] = invalid()
    run_cycle(build(ledger, source, target, clock))
    item = ledger.find_work("invoice", deal.id)
    assert item is not None and item.status == WorkStatus.DEAD
    assert ledger.resolve_work(item.id, "ops", "invoiced by hand in QuickBooks")
    reread(ledger)
    clock.advance(hours=1)
    calls = target.create_calls
    summary = run_cycle(build(ledger, source, target, clock))
    assert summary.exit_code == 0 and target.create_calls == calls
    assert ledger.get_work(item.id).status == WorkStatus.RESOLVED  # type: ignore[union-attr]


def test_a_changed_deal_comes_back(ledger: Ledger, clock: Clock) -> None:
    bad = make_deal(9, target_hint="Xero")
    source = FakeSource([bad])
    item_id = rejected_then_resolved(ledger, clock, source, bad.id)
    source.deals = [
        bad.model_copy(update={"name": "renamed", "revision": bad.revision + timedelta(hours=1)})
    ]
    clock.advance(hours=1)
    summary = run_cycle(build(ledger, source, FakeTarget(), clock))
    assert summary.needs_attention == 1  # still Xero: rejected again, for the new content
    assert ledger.get_work(item_id).status == WorkStatus.DEAD  # type: ignore[union-attr]


def test_a_mapping_change_brings_it_back(ledger: Ledger, clock: Clock, tmp_path: Path) -> None:
    bad = make_deal(9, target_hint="Xero")
    source = FakeSource([bad])
    rejected_then_resolved(ledger, clock, source, bad.id)
    custom = tmp_path / "routing.yaml"
    custom.write_text("routing:\n  values:\n    quickbooks: [QuickBooks, Xero]\n")
    target = FakeTarget()
    engine = build(ledger, source, target, clock)
    engine.mapping = load_mappings([custom])
    engine.planner = Planner(
        mapping=engine.mapping,
        catalogs={"quickbooks": target.catalog()},
        default_target="quickbooks",
        idempotency_key=invoice_key,
    )
    reread(ledger)
    clock.advance(hours=1)
    assert run_cycle(engine).invoices_created == 1
    assert target.per_deal() == {bad.id: 1}
