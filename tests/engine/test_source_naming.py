"""The deal source's ledger rows are named after its connection, and the plain source
section (the connection named after its kind) keeps the rows older ledgers hold."""

from __future__ import annotations

import pytest

from billsync.sync.engine.cycle import deals_cursor, run_cycle
from billsync.sync.ledger import Ledger
from tests.engine.fakes import Clock, FakeSource, FakeTarget, build, make_deal


@pytest.mark.parametrize(
    ("source", "row"),
    [
        ("salesforce", "salesforce.deals"),  # the row every ledger before connections has
        ("crm_eu", "crm_eu.deals"),
    ],
)
def test_the_watermark_row_is_named_after_the_source_connection(source: str, row: str) -> None:
    assert deals_cursor(source) == row


def test_without_a_connection_name_the_source_names_itself(ledger: Ledger, clock: Clock) -> None:
    engine = build(ledger, FakeSource([make_deal(1)]), FakeTarget(), clock)
    assert engine.source_name == "salesforce"  # FakeSource.system
    run_cycle(engine)
    assert ledger.get_cursor("salesforce.deals") is not None


def test_a_named_source_connection_keeps_its_own_watermark(ledger: Ledger, clock: Clock) -> None:
    engine = build(ledger, FakeSource([make_deal(1)]), FakeTarget(), clock)
    engine.source_connection = "crm_eu"
    run_cycle(engine)
    assert ledger.get_cursor("crm_eu.deals") is not None
    assert ledger.get_cursor("salesforce.deals") is None


def test_an_older_ledgers_watermark_is_read_by_the_plain_source(
    ledger: Ledger, clock: Clock
) -> None:
    deals = [make_deal(n) for n in range(3)]
    source = FakeSource(deals)
    first = run_cycle(build(ledger, source, FakeTarget(), clock))
    assert first.deals_seen == 3
    engine = build(ledger, source, FakeTarget(), clock)
    engine.source_connection = "salesforce"  # sync.source: salesforce, as wiring passes it
    assert run_cycle(engine).deals_seen == 0  # read on from the stored row
