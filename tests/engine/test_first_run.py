"""Where a run starts reading (billsync.sync.engine.first_run): one case per row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from billsync.core.plugins import ConnectorPluginError, ConnectorSpec
from billsync.core.settings import SourceSection
from billsync.sync.engine.cycle import deals_cursor
from billsync.sync.engine.first_run import (
    BACKFILL_FROM,
    StartChoice,
    StartNotChosen,
    recorded_start,
    resolve_start,
    watermark_at,
)
from billsync.sync.ledger import Ledger

JAN = datetime(2026, 1, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
SOURCE = "salesforce"


class Counting:
    def __init__(self, won: int) -> None:
        self.won = won
        self.calls = 0

    def count_won_deals(self, before: datetime | None = None) -> int:
        self.calls += 1
        return self.won


def test_a_fresh_ledger_with_no_choice_stops_with_the_count(ledger: Ledger) -> None:
    with pytest.raises(StartNotChosen) as stop:
        resolve_start(ledger, Counting(500), StartChoice(), source_name=SOURCE)
    assert stop.value.won == 500
    assert "500 closed-won deals exist" in stop.value.message()
    assert "--since" in stop.value.message() and "--backfill" in stop.value.message()
    assert recorded_start(ledger) is None


def test_a_source_that_cannot_count_still_stops(ledger: Ledger) -> None:
    with pytest.raises(StartNotChosen) as stop:
        resolve_start(ledger, object(), StartChoice(), source_name=SOURCE)
    assert stop.value.won is None
    assert "could not count" in stop.value.message()


def test_an_empty_source_needs_no_choice_and_is_recorded(ledger: Ledger) -> None:
    assert resolve_start(ledger, Counting(0), StartChoice(), source_name=SOURCE) is None
    assert recorded_start(ledger) == {"how": "empty_source", "from": None}
    source = Counting(40)  # deals won since are new: no question asked again
    assert resolve_start(ledger, source, StartChoice(), source_name=SOURCE) is None
    assert source.calls == 0


@pytest.mark.parametrize(
    ("choice", "start", "recorded"),
    [
        (StartChoice(since=JAN), JAN, {"how": "since", "from": JAN.isoformat()}),
        (StartChoice(start_from=MAR), MAR, {"how": "start_from", "from": MAR.isoformat()}),
        (StartChoice(since=JAN, start_from=MAR), JAN, {"how": "since", "from": JAN.isoformat()}),
        (StartChoice(backfill=True), BACKFILL_FROM, {"how": "backfill", "from": None}),
    ],
)
def test_the_first_choice_is_used_and_recorded(
    ledger: Ledger, choice: StartChoice, start: datetime, recorded: dict[str, str | None]
) -> None:
    source = Counting(500)
    assert resolve_start(ledger, source, choice, source_name=SOURCE) == start
    assert recorded_start(ledger) == recorded
    assert source.calls == 0
    # The next run with no flags (its first read found nothing: no watermark yet)
    # starts from the same place instead of asking again or reading everything.
    assert resolve_start(ledger, source, StartChoice(), source_name=SOURCE) == start


def test_a_ledger_with_a_watermark_reads_from_it(ledger: Ledger) -> None:
    ledger.set_cursor(deals_cursor(SOURCE), "2026-05-01T00:00:00.000Z|006000000000001AAA")
    source = Counting(500)
    assert resolve_start(ledger, source, StartChoice(), source_name=SOURCE) is None
    assert source.calls == 0
    assert recorded_start(ledger) is None  # an existing deployment is not a first run
    assert (
        resolve_start(ledger, source, StartChoice(since=JAN), source_name=SOURCE) == JAN
    )  # a re-read window
    assert recorded_start(ledger) is None


def _spec(name: str, cursor_at: Any) -> ConnectorSpec:
    return ConnectorSpec(name, name.title(), SourceSection, _no_build, cursor_at=cursor_at)


def _no_build(section: Any, context: Any) -> Any:
    raise AssertionError("not built")


def test_the_start_cursor_is_the_sources_own() -> None:
    seen: list[datetime] = []

    def cursor_at(start: datetime) -> str:
        seen.append(start)
        return f"at:{start.isoformat()}"

    assert watermark_at(JAN, _spec("crm", cursor_at)) == f"at:{JAN.isoformat()}"
    naive = datetime(2026, 1, 1)
    assert watermark_at(naive, _spec("crm", cursor_at)) == f"at:{JAN.isoformat()}"
    assert seen == [JAN, JAN]  # a naive time reaches the source as UTC


def test_a_source_without_a_cursor_codec_is_a_config_problem() -> None:
    with pytest.raises(ConnectorPluginError) as problem:
        watermark_at(JAN, _spec("crm", None))
    [reason] = problem.value.problems
    assert reason.key == "sync.source" and "'crm'" in reason.reason
    assert "cursor_at" in reason.reason


def test_the_salesforce_start_cursor_precedes_every_deal_of_that_moment() -> None:
    from billsync.connectors.salesforce.plugin import SPEC

    assert watermark_at(MAR, SPEC) == "2026-03-01T00:00:00.000Z|0"
