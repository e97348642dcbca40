"""The engine finds a connector's optional abilities by `isinstance` against the
protocols in billsync.core.protocols, and does without them when they are missing."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from billsync.core.canonical import Customer
from billsync.core.protocols import (
    ConnectorError,
    EnsuresCustomers,
    FetchesDeals,
    ReportsLastCursor,
    ReportsQuota,
)
from billsync.sync.engine.cycle import run_cycle
from billsync.sync.engine.payments import feed_cursor_name
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.ops_reads import quota_cursor
from tests.engine.fakes import Clock, FakeFeed, FakeSource, FakeTarget, build, make_deal


@dataclass(frozen=True)
class FakeQuota:
    used: int | None = 900
    max: int | None = 1000
    floor_percent: Decimal = Decimal("10")
    stopped: bool = False


@dataclass
class QuotaSource(FakeSource):
    quota: FakeQuota = field(default_factory=FakeQuota)


@dataclass
class CursorFeed(FakeFeed):
    last_cursor: str | None = "quiet-until-now"


@dataclass
class BatchTarget(FakeTarget):
    batches: list[list[str]] = field(default_factory=list)

    def ensure_customers(
        self, customers: Sequence[Customer]
    ) -> Mapping[str, Customer | ConnectorError]:
        self.batches.append([c.account_id for c in customers])
        return {c.account_id: self.ensure_customer(c) for c in customers}


def test_the_fakes_have_exactly_the_abilities_they_declare() -> None:
    assert isinstance(QuotaSource([]), ReportsQuota)
    assert not isinstance(FakeSource([]), ReportsQuota)
    assert isinstance(FakeSource([]), FetchesDeals)
    assert isinstance(CursorFeed(), ReportsLastCursor)
    assert not isinstance(FakeFeed(), ReportsLastCursor)
    assert isinstance(BatchTarget(), EnsuresCustomers)
    assert not isinstance(FakeTarget(), EnsuresCustomers)


def test_a_source_reporting_its_quota_has_it_recorded(ledger: Ledger, clock: Clock) -> None:
    run_cycle(build(ledger, QuotaSource([make_deal(1)]), FakeTarget(), clock))
    recorded = ledger.get_cursor(quota_cursor("salesforce"))
    assert recorded is not None
    assert json.loads(recorded) == {
        "used": 900,
        "max": 1000,
        "floor_percent": "10",
        "stopped": False,
    }


def test_a_quota_not_reported_yet_or_not_at_all_records_nothing(
    ledger: Ledger, clock: Clock
) -> None:
    target = FakeTarget()
    run_cycle(build(ledger, FakeSource([make_deal(1)]), target, clock))
    assert ledger.get_cursor(quota_cursor("salesforce")) is None
    unreported = QuotaSource([make_deal(2)], quota=FakeQuota(used=None, max=None))
    run_cycle(build(ledger, unreported, target, clock))
    assert ledger.get_cursor(quota_cursor("salesforce")) is None


def test_a_quiet_feed_moves_its_cursor_only_when_it_reports_one(
    ledger: Ledger, clock: Clock
) -> None:
    for feed, expected in ((FakeFeed(), None), (CursorFeed(), "quiet-until-now")):
        engine = build(ledger, FakeSource([]), FakeTarget(), clock)
        engine.feeds = {"quickbooks": feed}
        run_cycle(engine)
        assert feed.polls == 1
        assert ledger.get_cursor(feed_cursor_name("quickbooks")) == expected


def test_a_target_with_a_batch_path_resolves_customers_in_one_call(
    ledger: Ledger, clock: Clock
) -> None:
    deals = [make_deal(n) for n in range(3)]  # three accounts
    target = BatchTarget()
    engine = build(ledger, FakeSource(deals), target, clock)
    engine.batch_size = 10
    summary = run_cycle(engine)
    assert summary.invoices_created == 3
    assert [sorted(batch) for batch in target.batches] == [sorted({d.account.id for d in deals})]
