"""Look-ups use what was sent (issue 16): the intent stores the DocNumber the invoice
is created with, and recovery searches by it, not by the deal id; several matches adopt
one (live first, oldest) and report the others."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from billsync.core.canonical import DiscrepancyKind
from billsync.core.idempotency import invoice_key
from billsync.mappings.loader import load_mappings
from billsync.mappings.plan import Planner
from billsync.sync.engine.cycle import Engine, run_cycle
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import DealState
from tests.engine.fakes import Clock, Crash, FakeSource, FakeTarget, build, make_deal, transient


def with_doc_number(
    tmp_path: Path, engine: Engine, target: FakeTarget, template: str, name: str = "m.yaml"
) -> Engine:
    path = tmp_path / name
    path.write_text(f'invoice:\n  doc_number: {{template: "{template}"}}\n')
    mapping = load_mappings([path])
    planner = Planner(
        mapping=mapping,
        catalogs={"quickbooks": target.catalog()},
        default_target="quickbooks",
        idempotency_key=invoice_key,
    )
    return dataclasses.replace(engine, mapping=mapping, planner=planner)


def test_custom_doc_number_lost_answer_is_found_by_what_was_sent(
    tmp_path: Path, ledger: Ledger, clock: Clock
) -> None:
    deal = make_deal(1)
    target = FakeTarget(by_doc_number=True)  # searches DocNumber, as QuickBooks does
    target.error_after_create[deal.id] = transient("read timed out")
    engine = with_doc_number(tmp_path, build(ledger, FakeSource([deal]), target, clock), target,
                             "SF-{deal.id}")  # fmt: skip
    run_cycle(engine)
    record = ledger.get_deal(deal.id, "quickbooks")
    assert record is not None and record.reference == f"SF-{deal.id}"
    assert record.state == DealState.FAILED
    clock.advance(minutes=5)  # the retry is due
    summary = run_cycle(engine)
    assert summary.invoices_adopted == 1 and target.per_deal() == {deal.id: 1}
    assert target.references_searched[-1] == f"SF-{deal.id}"


def test_crash_then_mapping_changed_still_searches_the_reference_sent(
    tmp_path: Path, ledger: Ledger, clock: Clock
) -> None:
    deal = make_deal(2)
    target = FakeTarget(by_doc_number=True)
    target.crash_after_create.add(deal.id)
    base = build(ledger, FakeSource([deal]), target, clock)
    with pytest.raises(Crash):
        run_cycle(with_doc_number(tmp_path, base, target, "SF-{deal.id}"))
    clock.advance(minutes=5)
    changed = with_doc_number(tmp_path, base, target, "N-{deal.id}", "n.yaml")
    summary = run_cycle(changed)
    assert summary.invoices_adopted == 1 and target.per_deal() == {deal.id: 1}
    assert target.create_calls == 1


def test_failed_then_new_revision_searches_old_and_new_references(
    tmp_path: Path, ledger: Ledger, clock: Clock
) -> None:
    deal = make_deal(3)
    target = FakeTarget(by_doc_number=True)
    target.error_after_create[deal.id] = transient()
    source = FakeSource([deal])
    base = build(ledger, source, target, clock)
    run_cycle(with_doc_number(tmp_path, base, target, "SF-{deal.id}"))
    source.deals = [deal.model_copy(update={"revision": deal.revision.replace(year=2027)})]
    run_cycle(with_doc_number(tmp_path, base, target, "N-{deal.id}", "n.yaml"))
    assert target.per_deal() == {deal.id: 1} and target.create_calls == 1


def test_several_matches_adopt_the_oldest_live_and_report_the_others(
    ledger: Ledger, clock: Clock
) -> None:
    deal = make_deal(4)
    target = FakeTarget()
    target.crash_after_create.add(deal.id)
    engine = build(ledger, FakeSource([deal]), target, clock)
    with pytest.raises(Crash):
        run_cycle(engine)
    first = next(iter(target.invoices))
    target.duplicate(deal.id)
    target.duplicate(deal.id)
    target.void(first)  # a voided match is adopted last
    clock.advance(minutes=5)
    run_cycle(engine)
    record = ledger.get_deal(deal.id, "quickbooks")
    assert record is not None and record.external_invoice_id == "INV2"
    [dup] = ledger.open_discrepancies(DiscrepancyKind.DUPLICATE_INVOICE_FOR_DEAL)
    assert dup.actual == "3"
    assert dup.details["adopted"] == "INV2" and dup.details["others"] == ["INV3", "INV1"]
