"""Reconciliation against fakes: every kind is found once, closed when it stops holding,
and --fix queues only mechanical work."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
import typer
from rich.console import Console
from typer.testing import CliRunner

from billsync.core.canonical import Discrepancy, DiscrepancyKind, InvoiceStatus
from billsync.sync.cli import reconcile_cmd
from billsync.sync.engine.cycle import RUN_LEASE, Engine, run_cycle
from billsync.sync.engine.failures import WRITEBACK
from billsync.sync.engine.reconcile import (
    Fixed,
    ReconcileReport,
    _Invoiced,
    reconcile,
)
from billsync.sync.engine.writeback import queue_writeback
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import WorkStatus
from tests.engine.fakes import (
    BatchTarget,
    Clock,
    FakeFeed,
    FakeSource,
    FakeTarget,
    ListingSource,
    auth,
    build,
    make_deal,
    payment,
    transient,
)
from tests.engine.test_references import with_doc_number

K = DiscrepancyKind
QBO = "quickbooks"


def setup(
    ledger: Ledger,
    clock: Clock,
    n: int = 2,
    *,
    source: FakeSource | None = None,
    target: FakeTarget | None = None,
    feed: FakeFeed | None = None,
) -> tuple[Engine, FakeSource, FakeTarget]:
    """n deals invoiced and written back by one run; the clock then moves on."""
    source = source or FakeSource([make_deal(i) for i in range(n)])
    target = target or FakeTarget()
    engine = build(ledger, source, target, clock)
    feed = feed or FakeFeed()
    feed.target = target
    engine.feeds = {QBO: feed}
    run_cycle(engine)
    clock.advance(minutes=5)
    return engine, source, target


def invoice_of(target: FakeTarget, deal_id: str) -> str:
    return target.find_invoices(deal_id)[0].external_id


def paid(ledger: Ledger, invoice: str) -> Decimal:
    record = ledger.get_invoice(QBO, invoice)
    assert record is not None
    return record.amount_paid


def pay(feed: FakeFeed, invoice: str, amount: str, pid: str = "P1", n: int = 1) -> None:
    """A payment applied in the target (a fact the feed reads); no event is sent."""
    feed.add_fact(invoice, pid, amount, n=n)


def kinds(report: ReconcileReport) -> list[str]:
    return sorted(str(d.kind) for d in report.open)


def again(engine: Engine, clock: Clock, **kw: Any) -> ReconcileReport:
    clock.advance(minutes=1)
    return reconcile(engine, **kw)


# --- clean ---------------------------------------------------------------------------


def test_clean_ledger_reports_nothing(ledger: Ledger, clock: Clock) -> None:
    engine, _, target = setup(ledger, clock, 3)
    report = reconcile(engine)
    assert report.open == [] and report.exit_code == 0
    assert report.checked == {QBO: 3} and len(target.fetched) == 3
    assert target.find_calls >= 3  # one duplicate look-up per invoiced deal
    assert report.errors == {} and report.fixed == []
    assert any("cannot list won deal ids" in s for s in report.skipped)
    assert any("cannot read deal stages" in s for s in report.skipped)


# --- ledger ↔ target -----------------------------------------------------------------


def test_void_out_of_band_is_recorded_once_fixes_money_state_and_closes(
    ledger: Ledger, clock: Clock
) -> None:
    engine, source, target = setup(ledger, clock)
    deal = source.deals[0].id
    invoice = invoice_of(target, deal)
    target.void(invoice)

    first = reconcile(engine)
    assert kinds(first) == [K.INVOICE_VOIDED_OUT_OF_BAND]
    assert first.recorded == 1 and first.exit_code == 1
    row = first.open[0]
    assert (row.deal_id, row.target, row.external_id) == (deal, QBO, invoice)
    assert (row.expected, row.actual) == ("open", "void")
    assert ledger.get_invoice(QBO, invoice).status == "void"  # type: ignore[union-attr]
    assert ledger.get_deal(deal, QBO).state == "voided"  # type: ignore[union-attr]
    assert ledger.find_work(WRITEBACK, deal).status == WorkStatus.PENDING  # type: ignore[union-attr]
    assert [f.action for f in first.fixed] == ["ledger_corrected"]
    assert [a.action for a in ledger.audit_for(f"deal:{deal}")][-1] == "invoice.corrected"

    second = again(engine, clock)
    assert second.recorded == 0 and kinds(second) == [K.INVOICE_VOIDED_OUT_OF_BAND]
    assert second.fixed == []  # nothing left to correct
    assert len(ledger.discrepancies_for_deal(deal)) == 1

    run_cycle(engine)
    assert source.written[deal].status == InvoiceStatus.VOID

    target.change(invoice, status="open")  # not possible in QBO/Stripe, but if it were
    third = again(engine, clock)
    assert third.open == [] and third.resolved == [(K.INVOICE_VOIDED_OUT_OF_BAND, deal, QBO)]
    assert ledger.get_invoice(QBO, invoice).status == "open"  # type: ignore[union-attr]
    assert ledger.get_deal(deal, QBO).state == "invoiced"  # type: ignore[union-attr]


def test_void_learned_through_the_feed_is_not_out_of_band(ledger: Ledger, clock: Clock) -> None:
    feed = FakeFeed()
    engine, source, target = setup(ledger, clock, 1, feed=feed)
    invoice = invoice_of(target, source.deals[0].id)
    target.void(invoice)
    feed.events = [payment(invoice, "0", "voided", n=1)]
    run_cycle(engine)
    assert reconcile(engine).open == []


def test_deleted_invoice_is_missing_then_closes_when_found(ledger: Ledger, clock: Clock) -> None:
    engine, source, target = setup(ledger, clock)
    deal = source.deals[1].id
    invoice = invoice_of(target, deal)
    ref = target.delete(invoice)

    first = reconcile(engine)
    assert kinds(first) == [K.INVOICE_MISSING_IN_TARGET]
    assert first.open[0].deal_id == deal and first.open[0].actual == "not found"
    assert ledger.get_invoice(QBO, invoice).status == "deleted"  # type: ignore[union-attr]
    assert again(engine, clock).recorded == 0

    target.invoices[invoice] = ref  # e.g. the read had gone to the wrong company
    third = again(engine, clock)
    assert third.open == [] and third.resolved == [(K.INVOICE_MISSING_IN_TARGET, deal, QBO)]
    assert ledger.get_invoice(QBO, invoice).status == "open"  # type: ignore[union-attr]


def test_every_invoice_missing_looks_like_the_wrong_account(ledger: Ledger, clock: Clock) -> None:
    engine, _, target = setup(ledger, clock, 3)
    for external_id in list(target.invoices):
        target.delete(external_id)
    report = reconcile(engine)
    assert report.open == [] and report.exit_code == 1
    assert "right quickbooks company or account" in report.errors[QBO][0]
    assert all(i.status == "open" for i in _ledger_invoices(ledger))


def test_total_edited_in_target(ledger: Ledger, clock: Clock) -> None:
    engine, source, target = setup(ledger, clock)
    deal = source.deals[0].id
    invoice = invoice_of(target, deal)
    target.change(invoice, total=Decimal("90.00"))

    first = reconcile(engine)
    assert kinds(first) == [K.INVOICE_TOTAL_MISMATCH]
    assert (first.open[0].expected, first.open[0].actual) == ("100.00 USD", "90.00 USD")
    record = ledger.get_invoice(QBO, invoice)
    assert record is not None and record.total == Decimal("90.00")  # ledger mirrors target
    assert record.balance == Decimal("90.00")
    assert again(engine, clock).recorded == 0  # expected stays the intended 100.00

    target.change(invoice, total=Decimal("100.00"))
    third = again(engine, clock)
    assert third.open == [] and third.resolved == [(K.INVOICE_TOTAL_MISMATCH, deal, QBO)]
    assert ledger.get_invoice(QBO, invoice).total == Decimal("100.00")  # type: ignore[union-attr]


def test_mismatch_found_at_create_closes_when_target_matches_the_draft(
    ledger: Ledger, clock: Clock
) -> None:
    engine, source, target = setup(ledger, clock, 1, target=FakeTarget(total_offset=Decimal(5)))
    deal = source.deals[0].id
    assert [d.kind for d in ledger.open_discrepancies()] == [K.INVOICE_TOTAL_MISMATCH]
    report = reconcile(engine)
    assert kinds(report) == [K.INVOICE_TOTAL_MISMATCH] and report.recorded == 0
    target.change(invoice_of(target, deal), total=Decimal("100.00"))
    assert again(engine, clock).open == []


def test_duplicate_invoice_for_deal(ledger: Ledger, clock: Clock) -> None:
    engine, source, target = setup(ledger, clock)
    deal = source.deals[0].id
    extra = target.duplicate(deal)

    first = reconcile(engine)
    assert kinds(first) == [K.DUPLICATE_INVOICE_FOR_DEAL]
    assert (first.open[0].expected, first.open[0].actual) == ("1", "2")
    assert again(engine, clock).recorded == 0

    target.void(extra.external_id)  # the operator voids the extra one
    third = again(engine, clock)
    assert third.open == [] and third.resolved == [(K.DUPLICATE_INVOICE_FOR_DEAL, deal, QBO)]


def test_duplicate_search_uses_the_reference_the_invoice_was_created_with(
    tmp_path: Path, ledger: Ledger, clock: Clock
) -> None:
    # QuickBooks finds invoices by DocNumber: with a custom doc_number the deal id finds
    # nothing, so reconcile must search by the stored reference to see a duplicate.
    target = FakeTarget(by_doc_number=True)
    source = FakeSource([make_deal(0)])
    engine = with_doc_number(tmp_path, build(ledger, source, target, clock), target, "SF-{deal.id}")
    engine.feeds = {QBO: FakeFeed(target=target)}
    run_cycle(engine)
    clock.advance(minutes=5)
    deal = source.deals[0].id
    target.duplicate(deal)

    report = reconcile(engine)
    assert kinds(report) == [K.DUPLICATE_INVOICE_FOR_DEAL]
    assert target.references_searched[-1] == f"SF-{deal}"


def test_read_error_for_one_invoice_keeps_its_rows_and_checks_the_rest(
    ledger: Ledger, clock: Clock
) -> None:
    engine, source, target = setup(ledger, clock, 3)
    first_invoice = invoice_of(target, source.deals[0].id)
    target.void(first_invoice)
    assert kinds(reconcile(engine)) == [K.INVOICE_VOIDED_OUT_OF_BAND]

    target.change(first_invoice, status="open")
    target.fetch_errors[first_invoice] = transient("QBO 503")
    target.void(invoice_of(target, source.deals[2].id))
    report = again(engine, clock)
    assert report.checked == {QBO: 2}
    assert "QBO 503" in report.errors[QBO][0]
    # The unreadable invoice's row stays open: nothing was learned about it.
    assert kinds(report) == [K.INVOICE_VOIDED_OUT_OF_BAND] * 2


def test_auth_error_stops_that_target(ledger: Ledger, clock: Clock) -> None:
    engine, _, target = setup(ledger, clock, 3)
    first = sorted(target.invoices)[0]
    target.fetch_errors[first] = auth()
    target.fetched.clear()
    from billsync.sync.engine.summary import RunSummary

    summary = RunSummary("r1")
    report = reconcile(engine, summary)
    assert target.fetched == [first]  # nothing more was asked of it
    assert summary.stopped == {QBO: "reconnect with billsync auth quickbooks"}
    assert report.exit_code == 1 and len(report.errors[QBO]) == 1


def test_duplicate_lookup_error_is_reported_not_fatal(ledger: Ledger, clock: Clock) -> None:
    engine, source, target = setup(ledger, clock)
    target.find_errors[source.deals[0].id] = transient("search down")
    report = reconcile(engine)
    assert report.checked == {QBO: 2} and "search down" in report.errors[QBO][0]


def test_batched_reads_where_the_target_has_them(ledger: Ledger, clock: Clock) -> None:
    target = BatchTarget()
    engine, _, _ = setup(ledger, clock, 5, target=target)
    target.delete(sorted(target.invoices)[0])
    report = reconcile(engine)
    assert target.batch_calls == 1 and target.fetched == []
    assert kinds(report) == [K.INVOICE_MISSING_IN_TARGET]


def test_reads_are_bounded_and_rotate_over_every_invoice(ledger: Ledger, clock: Clock) -> None:
    engine, _, target = setup(ledger, clock, 5)
    target.fetched.clear()
    for _ in range(3):
        assert again(engine, clock, limit=2).checked == {QBO: 2}
    assert len(target.fetched) == 6 and set(target.fetched) == set(target.invoices)


def test_open_rows_are_reread_every_pass_outside_the_rotation(ledger: Ledger, clock: Clock) -> None:
    engine, source, target = setup(ledger, clock, 4)
    invoice = invoice_of(target, source.deals[3].id)
    target.void(invoice)
    reconcile(engine)  # limit 500: finds it
    target.change(invoice, status="open")
    for _ in range(2):
        report = again(engine, clock, limit=1)
    assert report.open == []  # closed although the rotation was elsewhere


# --- money: ledger ↔ target, both ways -------------------------------------------------


def _money_row(report: ReconcileReport) -> Discrepancy:
    [row] = [d for d in report.open if d.kind == K.INVOICE_MONEY_MISMATCH]
    return row


def test_ledger_shows_less_paid_than_the_target_and_fix_records_the_read(
    ledger: Ledger, clock: Clock
) -> None:
    feed = FakeFeed()
    engine, source, target = setup(ledger, clock, 1, feed=feed)
    deal = source.deals[0].id
    invoice = invoice_of(target, deal)
    pay(feed, invoice, "60.00")  # no event reaches billsync

    looked = reconcile(engine)
    row = _money_row(looked)
    assert looked.exit_code == 1 and row.external_id == invoice
    assert row.expected == "paid 60.00 USD, balance 40.00 USD, status partially_paid"
    assert row.actual == "paid 0.00 USD, balance 100.00 USD, status open"
    assert "the ledger shows less paid than the target" in row.detail
    assert paid(ledger, invoice) == Decimal(0)  # without --fix nothing moves
    assert again(engine, clock).recorded == 0  # one row, re-verified

    fixed = again(engine, clock, fix=True)
    assert fixed.open == [] and fixed.exit_code == 0
    assert (K.INVOICE_MONEY_MISMATCH, deal, QBO) in fixed.resolved
    assert [f.action for f in fixed.fixed] == ["money_recorded"]
    record = ledger.get_invoice(QBO, invoice)
    assert record is not None and record.amount_paid == Decimal("60.00")
    assert record.money_status == "partially_paid"
    assert ledger.find_work(WRITEBACK, deal).status == WorkStatus.PENDING  # type: ignore[union-attr]
    assert again(engine, clock).open == []  # converged
    run_cycle(engine)
    assert source.written[deal].amount_paid == Decimal("60.00")


def test_ledger_shows_more_paid_than_the_target(ledger: Ledger, clock: Clock) -> None:
    feed = FakeFeed()
    engine, source, target = setup(ledger, clock, 1, feed=feed)
    deal = source.deals[0].id
    invoice = invoice_of(target, deal)
    pay(feed, invoice, "100.00")
    reconcile(engine, fix=True)
    assert paid(ledger, invoice) == Decimal("100.00")
    feed.remove_fact("P1")  # the payment is deleted in the target; nothing tells billsync

    row = _money_row(again(engine, clock))
    assert row.expected == "paid 0.00 USD, balance 100.00 USD, status open"
    assert row.actual == "paid 100.00 USD, balance 0.00 USD, status paid"
    assert "the ledger shows more paid than the target" in row.detail

    pay(feed, invoice, "30.00", pid="P2")  # a smaller one arrives: the row shows it
    row = _money_row(again(engine, clock))
    assert row.expected == "paid 30.00 USD, balance 70.00 USD, status partially_paid"

    fixed = again(engine, clock, fix=True)
    assert fixed.open == [] and paid(ledger, invoice) == Decimal("30.00")


def test_due_date_moved_in_the_target(ledger: Ledger, clock: Clock) -> None:
    from datetime import date

    feed = FakeFeed()
    engine, source, target = setup(ledger, clock, 1, feed=feed)
    invoice = invoice_of(target, source.deals[0].id)
    feed.due[invoice] = date(2027, 1, 31)
    row = _money_row(reconcile(engine))
    assert row.expected == "paid 0.00 USD, balance 100.00 USD, due date 2027-01-31"
    assert again(engine, clock, fix=True).open == []
    assert ledger.get_invoice(QBO, invoice).due_date == date(2027, 1, 31)  # type: ignore[union-attr]


def test_target_figures_its_facts_do_not_explain(ledger: Ledger, clock: Clock) -> None:
    feed = FakeFeed()
    engine, source, target = setup(ledger, clock, 1, feed=feed)
    invoice = invoice_of(target, source.deals[0].id)
    feed.reported[invoice] = (Decimal("80.00"), Decimal("0.00"))  # balance 80, no payment
    report = reconcile(engine, fix=True)
    [row] = [d for d in report.open if d.kind == K.TARGET_FIGURES_UNEXPLAINED]
    assert (row.expected, row.actual) == ("balance 100.00 USD", "balance 80.00 USD")
    assert report.exit_code == 1  # --fix cannot explain the target's books
    del feed.reported[invoice]
    assert again(engine, clock).open == []


def test_taxed_invoice_is_not_a_discrepancy(ledger: Ledger, clock: Clock) -> None:
    deals = [make_deal(1)]
    target = FakeTarget(total_offset=Decimal("8.25"))  # the target adds 8.25 tax
    feed = FakeFeed(tax={"INV1": Decimal("8.25")})
    engine, _, _ = setup(ledger, clock, source=FakeSource(deals), target=target, feed=feed)
    invoice = invoice_of(target, deals[0].id)
    assert invoice == "INV1" and target.invoices[invoice].total == Decimal("108.25")
    pay(feed, invoice, "108.25")
    first = reconcile(engine, fix=True)  # records the payment the ledger missed
    assert first.open == [] and first.exit_code == 0
    second = again(engine, clock)
    assert second.open == [] and second.recorded == 0 and second.exit_code == 0
    record = ledger.get_invoice(QBO, invoice)
    assert record is not None and (record.net, record.tax) == (Decimal("100.00"), Decimal("8.25"))


def test_money_read_error_keeps_rows_and_is_reported(ledger: Ledger, clock: Clock) -> None:
    feed = FakeFeed()
    engine, source, target = setup(ledger, clock, 1, feed=feed)
    invoice = invoice_of(target, source.deals[0].id)
    pay(feed, invoice, "10.00")
    feed.read_errors[invoice] = transient("money read timed out")
    report = reconcile(engine)
    assert report.open == [] and "money read timed out" in report.errors[QBO][0]


def test_overpayment_closes_after_the_refund(ledger: Ledger, clock: Clock) -> None:
    feed = FakeFeed()
    engine, source, target = setup(ledger, clock, 1, feed=feed)
    deal = source.deals[0].id
    invoice = invoice_of(target, deal)
    feed.events = [feed.add_fact(invoice, "P1", "100.00", n=1)]
    feed.events.append(feed.add_fact(invoice, "P2", "25.00", n=2))
    run_cycle(engine)
    assert kinds(again(engine, clock)) == [K.OVERPAYMENT]
    feed.events.append(feed.remove_fact("P2"))  # the extra payment moved away
    run_cycle(engine)
    report = again(engine, clock)
    assert report.open == [] and (K.OVERPAYMENT, deal, QBO) in report.resolved


def test_unknown_payment_closes_when_it_is_applied_later(ledger: Ledger, clock: Clock) -> None:
    feed = FakeFeed()
    engine, source, target = setup(ledger, clock, 1, feed=feed)
    invoice = invoice_of(target, source.deals[0].id)
    feed.events = [payment(None, "100.00", "paid", pid="U1", n=1)]
    run_cycle(engine)
    assert kinds(again(engine, clock)) == [K.PAYMENT_FOR_UNKNOWN_INVOICE]
    assert kinds(again(engine, clock)) == [K.PAYMENT_FOR_UNKNOWN_INVOICE]
    clock.advance(minutes=1)
    feed.events.append(feed.add_fact(invoice, "U1", "100.00", n=2))  # applied in QBO
    run_cycle(engine)
    assert again(engine, clock).open == []


# --- Salesforce ↔ ledger -------------------------------------------------------------


def test_deal_changed_after_invoice_closes_when_the_invoice_catches_up(
    ledger: Ledger, clock: Clock
) -> None:
    engine, source, _ = setup(ledger, clock, 1)
    deal = source.deals[0]
    source.deals = [
        deal.model_copy(
            update={"amount": Decimal("200.00"), "revision": deal.revision + timedelta(days=1)}
        )
    ]
    run_cycle(engine)
    report = again(engine, clock)
    assert kinds(report) == [K.DEAL_CHANGED_AFTER_INVOICE] and report.recorded == 0
    (row,) = ledger.open_discrepancies()
    changed = row.details["revision"]  # expected and actual are amounts, not hashes
    ledger.set_deal_state(deal.id, QBO, "invoiced", revision=changed)  # e.g. re-invoiced
    assert again(engine, clock).open == []


def test_deal_without_invoice_or_work_is_not_invoiced(ledger: Ledger, clock: Clock) -> None:
    from tests.engine.fakes import Crash

    deals = [make_deal(i) for i in range(2)]
    target = FakeTarget(crash_before_create={deals[1].id})
    source = FakeSource(deals)
    engine = build(ledger, source, target, clock)
    with pytest.raises(Crash):
        run_cycle(engine)
    first = reconcile(engine)  # the crash left both intents of the batch without outcome
    assert [(d.kind, d.deal_id, d.actual) for d in first.open] == [
        (K.CLOSED_WON_NOT_INVOICED, deal.id, "invoicing") for deal in deals
    ]
    assert again(engine, clock).recorded == 0
    run_cycle(engine)  # the next run looks it up and creates it
    assert again(engine, clock).open == []


def test_rejected_deal_is_tracked_by_its_work_item(ledger: Ledger, clock: Clock) -> None:
    source = FakeSource([make_deal(1, target_hint="Xero"), make_deal(2)])
    engine, _, _ = setup(ledger, clock, source=source)
    assert reconcile(engine).open == []


def test_won_deal_never_read_is_found_when_the_source_can_list(
    ledger: Ledger, clock: Clock
) -> None:
    late = make_deal(9)
    early = late.model_copy(update={"revision": late.revision - timedelta(days=30)})
    source = ListingSource([make_deal(1)], unread=[])
    engine, _, _ = setup(ledger, clock, source=source)
    source.deals.append(early)  # won, but stamped before the watermark: the pull skips it
    first = reconcile(engine)
    assert [(d.kind, d.deal_id, d.target) for d in first.open] == [
        (K.CLOSED_WON_NOT_INVOICED, early.id, None)
    ]
    assert not any("won deal ids" in s for s in first.skipped)
    assert again(engine, clock).recorded == 0

    source.deals[-1] = early.model_copy(update={"revision": late.revision + timedelta(days=1)})
    run_cycle(engine)  # touched in Salesforce: now pulled and invoiced
    assert again(engine, clock).open == []


def test_late_visible_won_deal_is_found_and_invoiced_by_the_next_run(
    ledger: Ledger, clock: Clock
) -> None:
    """A deal whose change committed with a SystemModstamp older than the watermark
    minus the overlap: the pull never returns it; the listing finds it, reconcile
    records and queues it, and the next run reads it by id and invoices it."""
    first = make_deal(1)
    late = make_deal(7, stamp=first.revision - timedelta(days=2))
    source = ListingSource([first])
    engine, _, target = setup(ledger, clock, source=source)
    source.deals.append(late)  # visible now, stamped long before the watermark

    found = reconcile(engine)
    assert [(d.kind, d.deal_id, d.target) for d in found.open] == [
        (K.CLOSED_WON_NOT_INVOICED, late.id, None)
    ]
    assert ("invoice_queued", late.id) in [(f.action, f.deal_id) for f in found.fixed]
    assert again(engine, clock).recorded == 0  # still open: not invoiced yet

    run_cycle(engine)
    assert late.id in source.fetched_ids and late.id in target.per_deal()
    after = again(engine, clock)
    assert after.open == [] and (K.CLOSED_WON_NOT_INVOICED, late.id, None) in after.resolved
    run_cycle(engine)
    assert target.per_deal()[late.id] == 1  # exactly once


def test_deal_lost_after_invoice(ledger: Ledger, clock: Clock) -> None:
    source = ListingSource([make_deal(1), make_deal(2)])
    engine, _, target = setup(ledger, clock, source=source)
    deal = source.deals[0].id
    source.lost[deal] = "Closed Lost"
    report = reconcile(engine)
    assert [(d.kind, d.deal_id, d.expected, d.actual) for d in report.open] == [
        (K.DEAL_LOST_AFTER_INVOICE, deal, "Closed Won", "Closed Lost")
    ]
    assert report.open[0].external_id == invoice_of(target, deal)
    assert again(engine, clock).recorded == 0
    target.void(invoice_of(target, deal))  # the sale is off: the invoice is voided
    closed = again(engine, clock)
    assert (K.DEAL_LOST_AFTER_INVOICE, deal, QBO) in closed.resolved
    assert K.DEAL_LOST_AFTER_INVOICE not in kinds(closed)


def test_acknowledged_discrepancy_stays_listed_but_does_not_fail(
    ledger: Ledger, clock: Clock
) -> None:
    feed = FakeFeed()
    engine, source, target = setup(ledger, clock, 1, feed=feed)
    invoice = invoice_of(target, source.deals[0].id)
    pay(feed, invoice, "10.00")
    row = _money_row(reconcile(engine))
    assert row.id is not None
    ledger.acknowledge_discrepancy(row.id, "ana", "customer's bank is checking")
    seen = again(engine, clock)
    assert seen.exit_code == 0 and _money_row(seen).acknowledged_by == "ana"
    pay(feed, invoice, "25.00", pid="P2")  # the amounts change: it needs looking at again
    changed = again(engine, clock)
    assert changed.exit_code == 1 and _money_row(changed).acknowledged_at is None


# --- write-back ----------------------------------------------------------------------


def test_lost_writeback_is_stale_and_fix_queues_it(ledger: Ledger, clock: Clock) -> None:
    feed = FakeFeed()
    engine, source, target = setup(ledger, clock, 1, feed=feed)
    deal = source.deals[0].id
    invoice = invoice_of(target, deal)
    # A payment recorded, then a crash before its write-back was queued.
    pay(feed, invoice, "100.00")
    ledger.record_invoice_money(feed.read_invoice_money([invoice])[invoice])
    first = reconcile(engine)
    assert kinds(first) == [K.WRITEBACK_STALE] and "changed at" in (first.open[0].actual or "")
    assert first.fixed == []  # without --fix nothing is queued
    assert ledger.find_work(WRITEBACK, deal).status == WorkStatus.DONE  # type: ignore[union-attr]

    fixed = again(engine, clock, fix=True)
    assert [(f.action, f.deal_id) for f in fixed.fixed] == [("writeback_queued", deal)]
    assert fixed.recorded == 0 and kinds(fixed) == [K.WRITEBACK_STALE]
    assert ledger.find_work(WRITEBACK, deal).status == WorkStatus.PENDING  # type: ignore[union-attr]
    assert again(engine, clock, fix=True).fixed == []  # already queued: not queued twice

    clock.advance(minutes=1)
    run_cycle(engine)
    assert source.written[deal].amount_paid == Decimal("100.00")
    final = again(engine, clock)
    assert final.open == [] and final.resolved == [(K.WRITEBACK_STALE, deal, QBO)]


def test_dead_writeback_is_stale_and_fix_revives_it(ledger: Ledger, clock: Clock) -> None:
    engine, source, _ = setup(ledger, clock, 1)
    deal = source.deals[0].id
    queue_writeback(ledger, deal, QBO, clock.now)
    [item] = ledger.lease_due_work(clock.now, 10, "w", timedelta(minutes=1), kinds=(WRITEBACK,))
    ledger.fail_work(item.id, "invalid_data", "FIELD", "field not writable", clock.now, True)
    report = reconcile(engine, fix=True)
    assert "failed and gave up: field not writable" in (report.open[0].actual or "")
    assert ledger.find_work(WRITEBACK, deal).status == WorkStatus.PENDING  # type: ignore[union-attr]
    run_cycle(engine)
    assert again(engine, clock).open == []


def test_queued_writeback_is_stale_only_after_the_grace(ledger: Ledger, clock: Clock) -> None:
    engine, source, _ = setup(ledger, clock, 1)
    queue_writeback(ledger, source.deals[0].id, QBO, clock.now)
    assert reconcile(engine).open == []
    clock.advance(hours=2)
    assert kinds(reconcile(engine)) == [K.WRITEBACK_STALE]


@pytest.mark.parametrize(
    ("status", "error", "age", "stale"),
    [
        (None, None, 0, "never queued"),
        ("dead", "boom", 0, "gave up"),
        ("pending", "boom", 0, "will retry"),
        ("pending", None, 0, None),
        ("pending", None, 120, "not written"),
        ("leased", None, 0, None),
        ("resolved", None, 0, None),
        ("done", None, 0, None),
        ("done", None, 5, "after the last write-back"),
    ],
)
def test_stale_reason(
    clock: Clock, status: str | None, error: str | None, age: int, stale: str | None
) -> None:
    now = clock.now
    row = _Invoiced(
        deal_id="D",
        target=QBO,
        external_id="I",
        status="open",
        currency="USD",
        amount_paid=Decimal(0),
        balance=Decimal(100),
        invoice_updated_at=now,
        work_status=status,
        work_updated_at=now - timedelta(minutes=age),
        work_error=error,
    )
    reason = row.stale_reason(now - timedelta(hours=1))
    assert (reason is None) if stale is None else (stale in (reason or ""))


# --- report and command --------------------------------------------------------------


def test_exit_code() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 11, 1, tzinfo=UTC)
    row = Discrepancy(kind=K.WRITEBACK_STALE, deal_id="D", detected_at=at)
    acked = row.model_copy(update={"acknowledged_at": at, "acknowledged_by": "ana"})
    assert ReconcileReport().exit_code == 0
    assert ReconcileReport(fixed=[Fixed("writeback_queued", "D", QBO, "")]).exit_code == 0
    assert ReconcileReport(open=[row]).exit_code == 1
    assert ReconcileReport(open=[acked]).exit_code == 0  # seen by an operator
    assert ReconcileReport(open=[acked, row]).exit_code == 1
    assert ReconcileReport(errors={QBO: ["x"]}).exit_code == 1


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=200, soft_wrap=True), out


def test_command_json_and_exit_codes(ledger: Ledger, clock: Clock) -> None:
    engine, source, target = setup(ledger, clock)
    console, out = _console(False)
    assert reconcile_cmd.run_reconcile(engine, fix=False, as_json=True, console=console) == 0
    clean = json.loads(out.getvalue())
    assert clean["open"] == [] and clean["fixed"] == [] and clean["errors"] == {}

    target.void(invoice_of(target, source.deals[0].id))
    console, out = _console(False)
    assert reconcile_cmd.run_reconcile(engine, fix=True, as_json=True, console=console) == 1
    found = json.loads(out.getvalue())
    [row] = found["open"]
    assert row["kind"] == "invoice_voided_out_of_band" and row["expected"] == "open"
    assert {"kind", "deal_id", "target", "expected", "actual", "detail", "detected_at"} <= set(row)
    assert found["fixed"][0]["action"] == "ledger_corrected"
    assert ledger.acquire_lease(RUN_LEASE, "someone-else", timedelta(minutes=1))  # released


def test_command_table_and_plain_lines(ledger: Ledger, clock: Clock) -> None:
    engine, source, target = setup(ledger, clock)
    target.void(invoice_of(target, source.deals[0].id))
    console, out = _console(True)
    assert reconcile_cmd.run_reconcile(engine, fix=False, as_json=False, console=console) == 1
    assert "Open discrepancies (1)" in out.getvalue()
    console, out = _console(False)
    reconcile_cmd.run_reconcile(engine, fix=False, as_json=False, console=console)
    first = out.getvalue().splitlines()[0]
    assert first.startswith("invoice_voided_out_of_band deal=") and "\x1b" not in first


def test_command_refuses_while_a_run_holds_the_lease(ledger: Ledger, clock: Clock) -> None:
    engine, _, _ = setup(ledger, clock)
    assert ledger.acquire_lease(RUN_LEASE, "another-run", timedelta(minutes=5))
    console, _ = _console(False)
    assert reconcile_cmd.run_reconcile(engine, fix=False, as_json=True, console=console) == 3


def test_typer_command_uses_the_wiring(
    ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from billsync.sync import wiring

    engine, _, _ = setup(ledger, clock)
    url = str(ledger.engine.url)
    settings = SimpleNamespace(ledger=SimpleNamespace(url=url))
    asked: list[dict[str, Any]] = []

    def settings_for(ctx: Any, config: Any, **kw: Any) -> Any:
        asked.append(kw)
        return settings

    monkeypatch.setattr(reconcile_cmd, "settings_for", settings_for)
    app = typer.Typer()
    app.command()(reconcile_cmd.reconcile)

    seen: list[Any] = []

    def engine_for(settings: Any, built: Ledger) -> Engine:
        seen.append(built)
        engine.ledger = built
        return engine

    monkeypatch.setattr(wiring, "engine_for", engine_for)
    with structlog.testing.capture_logs() as logs:  # settings_for would send them to stderr
        result = CliRunner().invoke(app, ["--json", "--fix"])
    assert any(entry["event"] == "reconcile.finished" for entry in logs)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["open"] == [] and len(seen) == 1
    assert asked == [{"logs_to_stderr": True}]


def _ledger_invoices(ledger: Ledger) -> list[Any]:
    from billsync.sync.engine.reconcile import _Reads

    return _Reads(ledger.engine).invoices(QBO, after="", limit=100)
