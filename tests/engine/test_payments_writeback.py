"""Payments in, money state out: facts, not counters; every change written back once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import pytest
import sqlalchemy as sa

from sync.canonical import InvoiceStatus, PaymentEvent, WebhookNotification
from sync.engine.cycle import run_cycle
from sync.ledger import Ledger
from sync.ledger.schema import inbox
from tests.engine.fakes import Clock, FakeFeed, FakeSource, FakeTarget, build, make_deal, payment


def run(ledger: Ledger, source: FakeSource, target: FakeTarget, feed: FakeFeed, clock: Clock):
    engine = build(ledger, source, target, clock)
    engine.feeds = {"quickbooks": feed}
    return run_cycle(engine)


def test_invoiced_deals_are_written_back(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(n) for n in range(3)]
    source, target, feed = FakeSource(deals), FakeTarget(), FakeFeed()
    summary = run(ledger, source, target, feed, clock)
    assert summary.writebacks == 3
    written = source.written[deals[0].id]
    assert written.invoice_external_id == target.find_invoices(deals[0].id)[0].external_id
    assert written.balance == Decimal("100.00") and written.amount_paid == Decimal(0)
    calls = source.writeback_calls
    again = run(ledger, source, target, feed, clock)
    assert again.writebacks == 0 and source.writeback_calls == calls  # nothing changed


def test_rejected_deal_gets_its_reason_written(ledger: Ledger, clock: Clock) -> None:
    bad = make_deal(1, target_hint="Xero")
    source = FakeSource([bad])
    run(ledger, source, FakeTarget(), FakeFeed(), clock)
    assert "'Xero' is not a known billing platform" in source.errors_written[bad.id]


def test_partial_then_full_payment_duplicates_and_overpayment(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(1)
    source, target, feed = FakeSource([deal]), FakeTarget(), FakeFeed()
    run(ledger, source, target, feed, clock)
    invoice = target.find_invoices(deal.id)[0].external_id
    feed.events = [
        payment(invoice, "40.00", "partially_paid", pid="P1", n=1),
        payment(invoice, "40.00", "partially_paid", pid="P1", n=1),  # delivered twice
    ]
    first = run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.amount_paid == Decimal("40.00")
    assert ledger.get_deal(deal.id, "quickbooks").state == "partially_paid"  # type: ignore[union-attr]
    assert first.payments_applied == 1
    assert source.written[deal.id].amount_paid == Decimal("40.00")
    feed.events.append(payment(invoice, "60.00", "paid", pid="P2", n=2))
    run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.balance == Decimal(0) and record.status == "paid"
    assert source.written[deal.id].status == InvoiceStatus.PAID
    assert ledger.get_deal(deal.id, "quickbooks").state == "paid"  # type: ignore[union-attr]
    feed.events.append(payment(invoice, "25.00", "paid", pid="P3", n=3))
    over = run(ledger, source, target, feed, clock)
    assert over.discrepancies == 1
    assert [d.kind for d in ledger.open_discrepancies()] == ["overpayment"]


def test_refund_and_void(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(1)
    source, target, feed = FakeSource([deal]), FakeTarget(), FakeFeed()
    run(ledger, source, target, feed, clock)
    invoice = target.find_invoices(deal.id)[0].external_id
    feed.events = [
        payment(invoice, "100.00", "paid", pid="P1", n=1),
        payment(invoice, "30.00", "refunded", pid="R1", n=2),
    ]
    run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.amount_paid == Decimal("70.00")
    assert ledger.get_deal(deal.id, "quickbooks").state == "refunded"  # type: ignore[union-attr]
    feed.events.append(payment(invoice, "0", "voided", pid=None, n=3))
    run(ledger, source, target, feed, clock)
    assert ledger.invoice_for_deal(deal.id, "quickbooks").status == "void"  # type: ignore[union-attr]
    assert source.written[deal.id].status == InvoiceStatus.VOID


def test_webhook_inbox_is_drained_once(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(1)
    source, target, feed = FakeSource([deal]), FakeTarget(), FakeFeed()
    run(ledger, source, target, feed, clock)
    invoice = target.find_invoices(deal.id)[0].external_id
    assert ledger.store_inbox_event("quickbooks", "wh-1", b"{}", {"event_type": "Payment"})
    assert not ledger.store_inbox_event("quickbooks", "wh-1", b"{}", {"event_type": "Payment"})
    feed.resolved["wh-1"] = [payment(invoice, "100.00", "paid", pid="P9")]
    summary = run(ledger, source, target, feed, clock)
    assert summary.payments_applied == 1
    again = run(ledger, source, target, feed, clock)
    assert again.payments_applied == 0
    assert ledger.amount_paid("quickbooks", invoice) == Decimal("100.00")


def test_payment_with_no_invoice_is_a_discrepancy(ledger: Ledger, clock: Clock) -> None:
    source, target, feed = FakeSource([]), FakeTarget(), FakeFeed()
    feed.events = [payment(None, "12.00", "paid", pid="U1")]
    summary = run(ledger, source, target, feed, clock)
    assert summary.discrepancies == 1
    assert [d.kind for d in ledger.open_discrepancies()] == ["payment_for_unknown_invoice"]


def test_voided_payment_is_reversed_not_the_invoice(ledger: Ledger, clock: Clock) -> None:
    deal = make_deal(1)
    source, target, feed = FakeSource([deal]), FakeTarget(), FakeFeed()
    run(ledger, source, target, feed, clock)
    invoice = target.find_invoices(deal.id)[0].external_id
    feed.events = [payment(invoice, "100.00", "paid", pid=f"P7:invoice:{invoice}", n=1)]
    run(ledger, source, target, feed, clock)
    assert ledger.get_deal(deal.id, "quickbooks").state == "paid"  # type: ignore[union-attr]
    feed.events.append(payment(None, "0", "voided", pid="P7", n=2))  # payment deleted/voided
    run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.status == "open" and record.amount_paid == 0
    assert record.balance == Decimal("100.00")
    assert ledger.get_deal(deal.id, "quickbooks").state == "invoiced"  # type: ignore[union-attr]
    assert source.written[deal.id].balance == Decimal("100.00")
    assert ledger.open_discrepancies() == []


def test_a_crash_mid_batch_marks_what_was_applied_and_the_rest_comes_back(
    ledger: Ledger, clock: Clock
) -> None:
    """Events are marked done per claimed batch; a crash in the middle still marks the
    ones applied, and the claimed rest is applied once its claim runs out — once."""
    deal = make_deal(1)
    source, target, feed = FakeSource([deal]), FakeTarget(), FakeFeed()
    run(ledger, source, target, feed, clock)
    invoice = target.find_invoices(deal.id)[0].external_id
    for n in (1, 2, 3):
        ledger.store_inbox_event("quickbooks", f"wh-{n}", b"{}", {"event_type": "Payment"})
        feed.resolved[f"wh-{n}"] = [payment(invoice, "10.00", "partially_paid", pid=f"P{n}", n=n)]
    dying = DyingFeed(resolved=dict(feed.resolved), dies_at="wh-3")
    with pytest.raises(RuntimeError, match="killed"):
        run(ledger, source, target, dying, clock)
    statuses = _inbox_statuses(ledger)
    assert statuses == {"wh-1": "done", "wh-2": "done", "wh-3": "processing"}
    clock.advance(minutes=6)  # the dead worker's claim runs out
    summary = run(ledger, source, target, feed, clock)
    assert summary.payments_applied == 1
    assert _inbox_statuses(ledger) == {"wh-1": "done", "wh-2": "done", "wh-3": "done"}
    assert ledger.amount_paid("quickbooks", invoice) == Decimal("30.00")


@dataclass
class DyingFeed(FakeFeed):
    """Resolves like FakeFeed until it meets ``dies_at``: the process dies there."""

    dies_at: str = ""

    def resolve(self, notification: WebhookNotification) -> Sequence[PaymentEvent]:
        if notification.event_id == self.dies_at:
            raise RuntimeError("killed")
        return super().resolve(notification)


def _inbox_statuses(ledger: Ledger) -> dict[str, str]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(inbox.c.event_id, inbox.c.status)).all()
    return {event_id: status for event_id, status in rows}
