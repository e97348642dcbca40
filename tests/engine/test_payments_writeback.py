"""Money in, money state out: the target's facts, re-read on every hint; every change
written back once. The fake feed holds the target's truth (``FakeFeed.facts``); events
are only hints naming what changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import pytest
import sqlalchemy as sa

from billsync.core.canonical import PaymentEvent, WebhookNotification
from billsync.sync.engine.cycle import run_cycle
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.schema import inbox, payments
from tests.engine.fakes import Clock, FakeFeed, FakeSource, FakeTarget, build, make_deal, payment


def run(ledger: Ledger, source: FakeSource, target: FakeTarget, feed: FakeFeed, clock: Clock):
    engine = build(ledger, source, target, clock)
    feed.target = target
    engine.feeds = {"quickbooks": feed}
    return run_cycle(engine)


def invoiced(ledger: Ledger, clock: Clock, n: int = 1):
    deal = make_deal(n)
    source, target, feed = FakeSource([deal]), FakeTarget(), FakeFeed()
    run(ledger, source, target, feed, clock)
    return deal, source, target, feed, target.find_invoices(deal.id)[0].external_id


def state(ledger: Ledger, deal_id: str) -> str:
    found = ledger.get_deal(deal_id, "quickbooks")
    assert found is not None
    return found.state


def test_invoiced_deals_are_written_back(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(n) for n in range(3)]
    source, target, feed = FakeSource(deals), FakeTarget(), FakeFeed()
    summary = run(ledger, source, target, feed, clock)
    assert summary.writebacks == 3
    written = source.written[deals[0].id]
    assert written.invoice_external_id == target.find_invoices(deals[0].id)[0].external_id
    assert written.balance == Decimal("100.00") and written.amount_paid == Decimal(0)
    assert written.billing_status == "Invoiced" and written.total == Decimal("100.00")
    calls = source.writeback_calls
    again = run(ledger, source, target, feed, clock)
    assert again.writebacks == 0 and source.writeback_calls == calls  # nothing changed


def test_rejected_deal_gets_its_reason_written(ledger: Ledger, clock: Clock) -> None:
    bad = make_deal(1, target_hint="Xero")
    source = FakeSource([bad])
    run(ledger, source, FakeTarget(), FakeFeed(), clock)
    assert "'Xero' is not a known billing platform" in source.errors_written[bad.id]


def test_partial_then_full_payment_duplicates_and_overpayment(ledger: Ledger, clock: Clock) -> None:
    deal, source, target, feed, invoice = invoiced(ledger, clock)
    hint = feed.add_fact(invoice, "P1", "40.00", n=1)
    feed.events = [hint, hint]  # delivered twice
    first = run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.amount_paid == Decimal("40.00")
    assert state(ledger, deal.id) == "partially_paid"
    assert first.payments_applied == 1
    assert source.written[deal.id].amount_paid == Decimal("40.00")
    assert source.written[deal.id].billing_status == "Partially Paid"
    feed.events.append(feed.add_fact(invoice, "P2", "60.00", n=2))
    run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.balance == Decimal(0) and record.money_status == "paid"
    assert source.written[deal.id].billing_status == "Paid"
    assert state(ledger, deal.id) == "paid"
    feed.events.append(feed.add_fact(invoice, "P3", "25.00", n=3))
    over = run(ledger, source, target, feed, clock)
    assert over.discrepancies == 1
    assert [d.kind for d in ledger.open_discrepancies()] == ["overpayment"]
    assert source.written[deal.id].billing_status == "Overpaid"


def test_an_event_amount_is_a_hint_never_believed(ledger: Ledger, clock: Clock) -> None:
    """A signed webhook claiming 999,999.99 paid on a 100.00 invoice changes nothing the
    target does not confirm."""
    deal, source, target, feed, invoice = invoiced(ledger, clock)
    ledger.store_inbox_event("quickbooks", "wh-forged", b"{}", {"event_type": "Payment"})
    feed.resolved["wh-forged"] = [payment(invoice, "999999.99", "paid", pid="P666")]
    summary = run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.amount_paid == 0 and record.balance == Decimal("100.00")
    assert summary.payments_applied == 0 and ledger.open_discrepancies() == []


def test_refund_keeps_the_balance_and_void_clears_it(ledger: Ledger, clock: Clock) -> None:
    deal, source, target, feed, invoice = invoiced(ledger, clock)
    feed.events = [
        feed.add_fact(invoice, "P1", "100.00", n=1),
        feed.add_fact(invoice, "R1", "30.00", kind="refund", state="succeeded", n=2),
    ]
    run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.balance == 0 and record.refunded == Decimal("30.00")
    assert state(ledger, deal.id) == "partially_refunded"
    written = source.written[deal.id]
    assert (written.billing_status, written.amount_refunded) == ("Partially Refunded", 30)
    # The refund fails later: the money came back.
    feed.events.append(feed.add_fact(invoice, "R1", "30.00", kind="refund", state="failed", n=3))
    run(ledger, source, target, feed, clock)
    assert source.written[deal.id].billing_status == "Paid"
    target.void(invoice)
    feed.events.append(payment(invoice, "0", "voided", n=4))
    run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.status == "void" and record.balance == 0
    assert source.written[deal.id].billing_status == "Voided"


def test_lost_dispute_is_closed_not_open(ledger: Ledger, clock: Clock) -> None:
    deal, source, target, feed, invoice = invoiced(ledger, clock)
    feed.events = [
        feed.add_fact(invoice, "P1", "100.00", n=1),
        feed.add_fact(invoice, "DP1", "100.00", kind="dispute", state="open", n=2),
    ]
    run(ledger, source, target, feed, clock)
    assert source.written[deal.id].billing_status == "Disputed"
    assert ledger.invoice_for_deal(deal.id, "quickbooks").open_disputes == 1  # type: ignore[union-attr]
    feed.events.append(feed.add_fact(invoice, "DP1", "100.00", kind="dispute", state="lost", n=3))
    run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.open_disputes == 0
    assert record.dispute_lost == Decimal("100.00") and record.money_status == "dispute_lost"
    assert source.written[deal.id].billing_status == "Dispute Lost"


def test_credit_note_voided_restores_the_balance(ledger: Ledger, clock: Clock) -> None:
    deal, source, target, feed, invoice = invoiced(ledger, clock)
    feed.events = [feed.add_fact(invoice, "CN1", "100.00", kind="credit", n=1)]
    run(ledger, source, target, feed, clock)
    assert source.written[deal.id].billing_status == "Paid"
    assert source.written[deal.id].amount_credited == Decimal("100.00")
    feed.events.append(feed.add_fact(invoice, "CN1", "100.00", kind="credit", state="void", n=2))
    run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.balance == Decimal("100.00") and record.credited == 0
    assert source.written[deal.id].billing_status == "Invoiced"


def test_payment_edited_in_the_target_is_updated_not_added(ledger: Ledger, clock: Clock) -> None:
    """QuickBooks: a payment corrected from 50 to 20 shows 20 paid, one row."""
    deal, source, target, feed, invoice = invoiced(ledger, clock)
    key = f"P5:invoice:{invoice}"
    feed.events = [feed.add_fact(invoice, key, "50.00", n=1)]
    run(ledger, source, target, feed, clock)
    feed.events.append(feed.add_fact(invoice, key, "20.00", n=2))
    run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.amount_paid == Decimal("20.00")
    assert record.balance == Decimal("80.00")
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(payments)).scalar() == 1


def test_payment_moved_to_another_invoice_counts_once(ledger: Ledger, clock: Clock) -> None:
    """The same 200 payment re-applied from invoice A to invoice B: 0 on A, 200 on B."""
    deals = [make_deal(1), make_deal(2)]
    source, target, feed = FakeSource(deals), FakeTarget(), FakeFeed()
    run(ledger, source, target, feed, clock)
    a, b = (target.find_invoices(d.id)[0].external_id for d in deals)
    feed.events = [feed.add_fact(a, f"P8:invoice:{a}", "20.00", n=1)]
    run(ledger, source, target, feed, clock)
    feed.remove_fact("P8")
    # The CDC hint names the payment and where it applies now; the ledger knows where
    # it applied before.
    feed.events.append(feed.add_fact(b, f"P8:invoice:{b}", "20.00", n=2))
    run(ledger, source, target, feed, clock)
    first = ledger.invoice_for_deal(deals[0].id, "quickbooks")
    second = ledger.invoice_for_deal(deals[1].id, "quickbooks")
    assert first is not None and second is not None
    assert (first.amount_paid, second.amount_paid) == (0, Decimal("20.00"))
    assert source.written[deals[0].id].billing_status == "Invoiced"


def test_deleted_payment_is_tombstoned(ledger: Ledger, clock: Clock) -> None:
    deal, source, target, feed, invoice = invoiced(ledger, clock)
    feed.events = [feed.add_fact(invoice, f"P7:invoice:{invoice}", "100.00", n=1)]
    run(ledger, source, target, feed, clock)
    assert state(ledger, deal.id) == "paid"
    feed.events.append(feed.remove_fact("P7"))  # deleted: CDC gives only the payment id
    run(ledger, source, target, feed, clock)
    record = ledger.invoice_for_deal(deal.id, "quickbooks")
    assert record is not None and record.amount_paid == 0 and record.balance == Decimal("100.00")
    assert state(ledger, deal.id) == "invoiced"
    assert source.written[deal.id].balance == Decimal("100.00")
    assert ledger.open_discrepancies() == []


def test_webhook_inbox_is_drained_once(ledger: Ledger, clock: Clock) -> None:
    deal, source, target, feed, invoice = invoiced(ledger, clock)
    assert ledger.store_inbox_event("quickbooks", "wh-1", b"{}", {"event_type": "Payment"})
    assert not ledger.store_inbox_event("quickbooks", "wh-1", b"{}", {"event_type": "Payment"})
    feed.resolved["wh-1"] = [feed.add_fact(invoice, "P9", "100.00")]
    summary = run(ledger, source, target, feed, clock)
    assert summary.payments_applied == 1 and len(feed.money_reads) == 1
    again = run(ledger, source, target, feed, clock)
    assert again.payments_applied == 0
    assert ledger.invoice_for_deal(deal.id, "quickbooks").amount_paid == 100  # type: ignore[union-attr]


def test_payment_with_no_invoice_is_a_discrepancy(ledger: Ledger, clock: Clock) -> None:
    source, target, feed = FakeSource([]), FakeTarget(), FakeFeed()
    feed.events = [payment(None, "12.00", "paid", pid="U1")]
    summary = run(ledger, source, target, feed, clock)
    assert summary.discrepancies == 1
    [found] = ledger.open_discrepancies()
    assert found.kind == "payment_for_unknown_invoice" and found.actual == "12.00 USD"


def test_a_failed_read_keeps_the_cursor(ledger: Ledger, clock: Clock) -> None:
    from tests.engine.fakes import transient

    deal, source, target, feed, invoice = invoiced(ledger, clock)
    feed.events = [feed.add_fact(invoice, "P1", "100.00")]
    feed.read_errors[invoice] = transient()
    summary = run(ledger, source, target, feed, clock)
    assert summary.failures == 1 and ledger.get_cursor("quickbooks.events") is None
    feed.read_errors.clear()
    run(ledger, source, target, feed, clock)
    assert state(ledger, deal.id) == "paid"


def test_a_crash_mid_batch_leaves_the_batch_claimed_and_it_comes_back_once(
    ledger: Ledger, clock: Clock
) -> None:
    """A batch is marked done after its invoices were read and recorded; a crash in
    the middle leaves it claimed, and it is processed once its claim runs out."""
    deal, source, target, feed, invoice = invoiced(ledger, clock)
    for n in (1, 2, 3):
        ledger.store_inbox_event("quickbooks", f"wh-{n}", b"{}", {"event_type": "Payment"})
        feed.resolved[f"wh-{n}"] = [feed.add_fact(invoice, f"P{n}", "10.00", n=n)]
    dying = DyingFeed(resolved=dict(feed.resolved), dies_at="wh-3", facts=feed.facts)
    with pytest.raises(RuntimeError, match="killed"):
        run(ledger, source, target, dying, clock)
    statuses = _inbox_statuses(ledger)
    assert statuses == {"wh-1": "processing", "wh-2": "processing", "wh-3": "processing"}
    clock.advance(minutes=6)  # the dead worker's claim runs out
    summary = run(ledger, source, target, feed, clock)
    assert summary.payments_applied == 1
    assert _inbox_statuses(ledger) == {"wh-1": "done", "wh-2": "done", "wh-3": "done"}
    assert ledger.invoice_for_deal(deal.id, "quickbooks").amount_paid == 30  # type: ignore[union-attr]


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
