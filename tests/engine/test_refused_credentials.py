"""Wrong or revoked credentials for any connector exit 2 (issue 16), whatever else the
run did, and the refusal is kept in the ledger for `billsync auth … --status`."""

from __future__ import annotations

import json

from billsync.sync.engine.cycle import refused_cursor, run_cycle
from billsync.sync.ledger import Ledger
from tests.engine.fakes import Clock, FakeFeed, FakeSource, FakeTarget, auth, build, make_deal


def test_a_refused_payment_feed_exits_2_and_is_recorded(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(n) for n in range(2)]
    target = FakeTarget()
    engine = build(ledger, FakeSource(deals), target, clock)
    feed = FakeFeed(provider="stripe", target=target)

    def refused(since: object) -> object:
        raise auth()

    feed.events_since = refused  # type: ignore[method-assign,assignment]
    engine.feeds = {"stripe": feed}
    summary = run_cycle(engine)
    assert summary.invoices_created == 2  # the other connectors went on
    assert summary.exit_code == 2
    recorded = json.loads(ledger.get_cursor(refused_cursor("stripe")) or "{}")
    assert recorded["run_id"] == summary.run_id and recorded["message"]


def test_a_clean_run_records_no_refusal(ledger: Ledger, clock: Clock) -> None:
    summary = run_cycle(build(ledger, FakeSource([make_deal(1)]), FakeTarget(), clock))
    assert summary.exit_code == 0
    assert ledger.get_cursor(refused_cursor("quickbooks")) is None
