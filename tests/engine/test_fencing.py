"""Fencing (issue 16): a run frozen past its lease cannot write or create after another
run took over. Deterministic: the "freeze" is a hook that moves the fake clock past the
lease and runs the second run to completion before the first one goes on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from billsync.core.canonical import Customer, Deal
from billsync.core.protocols import Checkpointed, Cursor
from billsync.sync.engine.cycle import RUN_LEASE, Engine, LeaseTakenOver, _Heartbeat, run_cycle
from billsync.sync.ledger import LeaseLost, Ledger
from billsync.sync.ledger.models import DealState
from tests.engine.fakes import Clock, FakeSource, FakeTarget, build, make_deal


@dataclass
class FreezingSource(FakeSource):
    """Calls ``freeze`` once, before yielding the deal at ``at`` (a run paused between
    two batches: its next batch is already stale when it resumes)."""

    at: int = -1
    freeze: Callable[[], None] | None = None

    def pull(self, since: Cursor | None) -> Iterator[Checkpointed[Deal]]:
        for index, checkpointed in enumerate(super().pull(since)):
            if index == self.at and self.freeze is not None:
                freeze, self.freeze = self.freeze, None
                freeze()
            yield checkpointed


@dataclass
class FreezingTarget(FakeTarget):
    """Calls ``freeze`` once, inside the first customer creation (after the batch's
    intents were committed, before its create call)."""

    freeze: Callable[[], None] | None = None
    frozen_in: list[str] = field(default_factory=list)

    def ensure_customer(self, customer: Customer) -> Customer:
        if self.freeze is not None:
            freeze, self.freeze = self.freeze, None
            self.frozen_in.append(customer.account_id)
            freeze()
        return super().ensure_customer(customer)


def engines(ledger: Ledger, source: FakeSource, target: FakeTarget, clock: Clock):
    base = build(ledger, source, target, clock)
    return dataclasses.replace(base, holder="run-A"), dataclasses.replace(base, holder="run-B")


def test_run_frozen_between_batches_writes_nothing_after_takeover(
    ledger: Ledger, clock: Clock
) -> None:
    deals = [make_deal(n) for n in range(6)]
    lost = deals[4]
    source, target = FreezingSource(list(deals), at=3), FakeTarget()
    run_a, run_b = engines(ledger, source, target, clock)
    seen_by_b: list[int] = []

    def freeze() -> None:
        clock.advance(seconds=run_a.lease_ttl.total_seconds() + 30)  # A's heartbeat is frozen too
        source.deals.remove(lost)  # set to Closed Lost meanwhile: B never sees it won
        summary = run_cycle(run_b)
        seen_by_b.append(summary.invoices_created)

    source.freeze = freeze
    with pytest.raises(LeaseTakenOver, match="another run took over the lease"):
        run_cycle(run_a)
    assert seen_by_b == [2]  # B invoiced deals 3 and 5; 0-2 were A's first batch
    assert target.create_calls == 5
    assert target.per_deal() == {d.id: 1 for d in deals if d is not lost}
    assert ledger.get_deal(lost.id, "quickbooks") is None  # A wrote no intent for it
    runs = {run.outcome for run in ledger.recent_runs(5)}
    assert runs == {"clean", "lease_lost"}
    lease = ledger.get_lease(RUN_LEASE)
    assert lease is None  # B released it; A could not release B's


def test_run_frozen_after_its_intents_does_not_create(ledger: Ledger, clock: Clock) -> None:
    """Frozen after the batch's intents were committed, before its create call (inside
    the customer step): the next run looks the deals up and creates each once; the
    resumed run records nothing and creates nothing (its customer link is refused by
    the token check, before the create)."""
    deals = [make_deal(n) for n in range(5)]
    source, target = FakeSource(deals), FreezingTarget()
    run_a, run_b = engines(ledger, source, target, clock)

    def freeze() -> None:
        clock.advance(minutes=5)
        assert run_cycle(run_b).invoices_created == 5

    target.freeze = freeze
    with pytest.raises(LeaseTakenOver):
        run_cycle(run_a)
    assert target.frozen_in == [deals[0].account.id]
    assert target.per_deal() == {d.id: 1 for d in deals}
    assert target.create_calls == 5  # all by B, each after a look-up; none by A
    for deal in deals:
        record = ledger.get_deal(deal.id, "quickbooks")
        assert record is not None and record.state == DealState.INVOICED
    assert [a.action for a in ledger.audit_for(f"deal:{deals[0].id}")] == ["invoice.created"]


def test_heartbeat_that_cannot_renew_marks_the_run_lost(ledger: Ledger, clock: Clock) -> None:
    source, target = FakeSource([make_deal(1)]), FakeTarget()
    run_a, _run_b = engines(ledger, source, target, clock)
    fence = ledger.acquire_fence(RUN_LEASE, run_a.holder, run_a.lease_ttl)
    assert fence is not None
    heartbeat = _Heartbeat(run_a, fence)
    assert heartbeat.beat()
    clock.advance(seconds=run_a.lease_ttl.total_seconds() + 1)
    assert ledger.acquire_lease(RUN_LEASE, "run-B", run_a.lease_ttl) == fence.token + 1
    assert not heartbeat.beat()
    assert fence.lost.is_set()
    with pytest.raises(LeaseLost):
        fence.check()  # what the invoice stage asks before each create call


def test_stage_checks_the_ledger_before_a_create_even_without_the_mark(
    ledger: Ledger, clock: Clock
) -> None:
    """After a freeze the heartbeat may not have woken yet: the stage asks the ledger."""
    deals = [make_deal(n) for n in range(2)]
    source, target = FakeSource(deals), FakeTarget()
    run_a: Engine
    run_a, _run_b = engines(ledger, source, target, clock)

    def takeover(_draft: object) -> None:
        raise AssertionError("no create call after the takeover")

    def steal(*_args: object) -> None:
        clock.advance(minutes=5)
        assert ledger.acquire_lease(RUN_LEASE, "run-B", timedelta(minutes=5))
        target.before_create.append(takeover)

    original = ledger.record_intent

    def record_then_freeze(*args, **kwargs):  # type: ignore[no-untyped-def]
        record = original(*args, **kwargs)
        if args[0] == deals[-1].id:
            steal()
        return record

    ledger.record_intent = record_then_freeze  # type: ignore[method-assign]
    with pytest.raises(LeaseTakenOver):
        run_cycle(run_a)
    assert target.create_calls == 0
