"""The contract every deal source passes (billsync.core.protocols.DealSource)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from billsync.core.canonical import Deal, DealWriteBack, InvoiceStatus
from billsync.core.protocols import ConnectorError, DealSource, FetchesDeals
from billsync.testing.checks import assert_auth, assert_retryable, deal_key, source_of
from billsync.testing.harness import SourceHarness

__all__ = ["DealSourceContract"]


class DealSourceContract:
    """Subclass as ``TestXxxSource(DealSourceContract)`` and override ``harness``."""

    @pytest.fixture
    def harness(self) -> Iterator[SourceHarness]:
        raise NotImplementedError("override the `harness` fixture with the connector's harness")

    def test_entry_point_builds_a_deal_source(self, harness: SourceHarness) -> None:
        source = source_of(harness.build())
        assert isinstance(source, DealSource)
        assert source.system

    def test_pull_with_cursor_round_trip(self, harness: SourceHarness) -> None:
        seeded = harness.seed_deals(6)
        source = source_of(harness.build())
        first = list(source.pull(None))
        assert {deal_key(c.item) for c in first} == set(seeded)
        assert all(isinstance(c.cursor, str) and c.cursor for c in first)
        for item in (c.item for c in first if not isinstance(c.item, Deal)):
            assert item.field and item.reason, f"rejection of {item.deal_id} says nothing"
        deals = [c.item for c in first if isinstance(c.item, Deal)]
        assert deals, "the harness seeded no readable deal"
        seen = {(d.id, d.revision) for d in deals}
        cursor = first[-1].cursor

        again = [c.item for c in source.pull(cursor) if isinstance(c.item, Deal)]
        assert [(d.id, d.revision) for d in again if (d.id, d.revision) not in seen] == []

        changed = deals[0]
        harness.change_deal(changed.id)
        later = [c.item for c in source.pull(cursor) if isinstance(c.item, Deal)]
        revisions = [d.revision for d in later if d.id == changed.id]
        assert revisions, "a deal changed after the cursor did not come back"
        assert max(revisions) > changed.revision

    def test_fetch_deals_rereads_what_the_pull_read(self, harness: SourceHarness) -> None:
        """Optional ability `FetchesDeals`: the same deals as the pull, by id; an id that
        is no won deal is absent."""
        harness.seed_deals(3)
        source = source_of(harness.build())
        if not isinstance(source, FetchesDeals):
            pytest.skip("the source does not fetch deals by id (optional: FetchesDeals)")
        pulled = {c.item.id: c.item for c in source.pull(None) if isinstance(c.item, Deal)}
        assert pulled, "the harness seeded no readable deal"
        fetched = list(source.fetch_deals([*pulled, "006CT9999999999AAA"]))
        by_id = {deal_key(item): item for item in fetched}
        assert len(by_id) == len(fetched), "a deal came back twice"
        assert by_id == pulled

    def test_write_back_reports_per_deal_outcomes(self, harness: SourceHarness) -> None:
        harness.seed_deals(2)
        source = source_of(harness.build())
        deal = next(c.item for c in source.pull(None) if isinstance(c.item, Deal))
        update = DealWriteBack(
            deal_id=deal.id,
            target="contract",
            invoice_external_id=f"inv-{deal.id}",
            invoice_number="CT-0001",
            status=InvoiceStatus.OPEN,
            billing_status="Invoiced",
            currency=deal.currency,
            amount_paid=Decimal(0),
            balance=deal.amount,
        )
        assert source.write_back([update]) == {}
        assert harness.written_invoice_number(deal.id) == "CT-0001"
        assert source.write_back([]) == {}

    def test_server_errors_are_retryable_after_bounded_retries(
        self, harness: SourceHarness
    ) -> None:
        harness.seed_deals(2)
        source = source_of(harness.build())
        assert list(source.pull(None))  # signed in before the backend breaks
        harness.inject_server_errors()
        harness.sleeps.clear()
        with pytest.raises(ConnectorError) as caught:
            list(source.pull(None))
        assert_retryable(caught.value, harness.sleeps)
        harness.clear_faults()
        assert list(source.pull(None))

    def test_bad_credentials_are_auth_and_not_retried(self, harness: SourceHarness) -> None:
        harness.seed_deals(1)
        source = source_of(harness.build_with_bad_credentials())
        harness.sleeps.clear()
        with pytest.raises(ConnectorError) as caught:
            list(source.pull(None))
        assert_auth(caught.value, harness.sleeps)
