"""The invoice stage records a batch's outcomes in one transaction, and triages a batch
from one read: exactly once still holds when a run dies half-way through recording."""

from __future__ import annotations

from typing import Any

import pytest

from billsync.sync.engine.cycle import run_cycle
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import DealState
from tests.engine.fakes import Clock, Crash, FakeSource, FakeTarget, build, make_deal


def run(ledger: Ledger, source: FakeSource, target: FakeTarget, clock: Clock):
    return run_cycle(build(ledger, source, target, clock))  # type: ignore[arg-type]


def state(ledger: Ledger, deal_id: str) -> str | None:
    record = ledger.get_deal(deal_id, "quickbooks")
    return None if record is None else record.state


def test_a_crash_while_recording_a_batch_keeps_every_intent_open(
    ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    deals = [make_deal(n) for n in range(5)]  # batches of 3: deals 0–2, then 3–4
    source, target = FakeSource(deals), FakeTarget()
    set_deal_state = ledger.set_deal_state

    def dies_on_the_second(deal_id: str, target_name: str, new_state: str, **kw: Any) -> bool:
        if deal_id == deals[1].id and new_state == DealState.INVOICED:
            raise Crash(deal_id)  # the process dies after deal 0 was recorded
        return set_deal_state(deal_id, target_name, new_state, **kw)

    monkeypatch.setattr(ledger, "set_deal_state", dies_on_the_second)
    with pytest.raises(Crash):
        run(ledger, source, target, clock)
    # The first batch's invoices exist in the target, but none of its outcomes was
    # committed: every intent is open, so the next run looks them up.
    assert target.per_deal() == {d.id: 1 for d in deals[:3]}
    assert [state(ledger, d.id) for d in deals[:3]] == [DealState.INVOICING] * 3
    assert ledger.invoice_for_deal(deals[0].id, "quickbooks") is None
    assert ledger.audit_for(f"deal:{deals[0].id}") == []
    assert ledger.find_work("writeback", deals[0].id) is None

    monkeypatch.undo()
    ledger.release_lease("run", build(ledger, source, target, clock).holder)
    clock.advance(minutes=20)
    summary = run(ledger, source, target, clock)
    assert summary.invoices_adopted == 3 and summary.invoices_created == 2
    assert target.per_deal() == {d.id: 1 for d in deals}
    assert [state(ledger, d.id) for d in deals] == [DealState.INVOICED] * 5
    assert [a.action for a in ledger.audit_for(f"deal:{deals[0].id}")] == ["invoice.adopted"]
    assert set(source.written) == {d.id for d in deals}  # every write-back was queued


def test_a_deal_met_twice_in_one_batch_sees_its_own_intent(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(1)
    # The same deal twice in one pull batch (e.g. a page boundary re-read): the second
    # time, triage must see the intent the first one recorded, not the batch's read.
    source, target = FakeSource([deal, deal, make_deal(2)]), FakeTarget()
    summary = run(ledger, source, target, clock)
    assert summary.failures == 0
    assert target.per_deal() == {deal.id: 1, make_deal(2).id: 1}
    assert target.find_calls == 1  # the second sighting was looked up before creating
    assert state(ledger, deal.id) == DealState.INVOICED


def test_a_batch_of_deals_is_triaged_from_two_reads(
    ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    deals = [make_deal(n) for n in range(3)]
    source, target = FakeSource(deals), FakeTarget()
    calls: list[str] = []
    for name in ("get_deal", "find_work", "deals_for", "find_work_for"):
        original = getattr(ledger, name)

        def counted(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(ledger, name, counted)
    run(ledger, source, target, clock)
    assert calls.count("deals_for") == 1 and calls.count("find_work_for") == 1
    assert calls.count("get_deal") == 0  # no per-deal record reads while triaging
    assert target.per_deal() == {d.id: 1 for d in deals}
