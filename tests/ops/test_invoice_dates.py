"""Migration 0004 and the invoice columns aging needs: issue and due date, customer."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from alembic import command

from billsync.sync.engine.cycle import run_cycle
from billsync.sync.engine.recording import _due_date
from billsync.sync.ledger import Ledger, create_ledger_engine, head_revision
from billsync.sync.ledger.migrate import alembic_config, current_revision, upgrade_to_head
from tests.engine.fakes import Clock, FakeSource, FakeTarget, build, make_deal


def test_upgrade_from_0003_keeps_invoices(ledger_url: str) -> None:
    engine = create_ledger_engine(ledger_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0003")
            conn.execute(
                sa.text(
                    "INSERT INTO invoices (target, external_id, deal_id, currency, total, "
                    "amount_paid, balance, status, created_at, updated_at) VALUES ('stripe', "
                    "'in_1', 'd1', 'USD', 10, 0, 10, 'open', :t, :t)"
                ),
                {"t": "2026-01-02 03:04:05"},
            )
        upgrade_to_head(engine)
        assert current_revision(engine) == head_revision()
        [row] = Ledger(engine).ar_invoices(date(2026, 12, 31))
        assert (row.external_id, row.due_date, row.customer_name) == ("in_1", None, None)
        assert row.issued == date(2026, 1, 2)  # falls back to the row's creation date
    finally:
        engine.dispose()


def test_a_status_update_keeps_the_dates_and_customer(ledger: Ledger) -> None:
    ledger.upsert_invoice(
        target="quickbooks", external_id="130", currency="USD", total=Decimal("50.00"),
        status="open", deal_id="d1", issue_date=date(2026, 3, 1), due_date=date(2026, 3, 31),
        account_id="001A", customer_name="Acme",
    )  # fmt: skip
    ledger.upsert_invoice(
        target="quickbooks", external_id="130", currency="USD", total=Decimal("50.00"),
        status="paid",
    )  # fmt: skip
    [row] = ledger.ar_invoices(date(2026, 12, 31))
    assert (row.status, row.issued, row.due_date, row.account_id, row.customer_name) == (
        "paid", date(2026, 3, 1), date(2026, 3, 31), "001A", "Acme")  # fmt: skip


def test_the_invoice_stage_records_when_and_whom(sqlite_ledger: Ledger) -> None:
    clock = Clock()  # 2026-11-23 12:00 UTC
    run_cycle(build(sqlite_ledger, FakeSource([make_deal(1)]), FakeTarget(), clock))
    [row] = sqlite_ledger.ar_invoices(date(2026, 12, 31))
    assert row.issued == date(2026, 11, 23)
    assert (row.account_id, row.customer_name) == ("001000000000000001", "Customer 1")
    # QuickBooks derives the due date from the named term (Net 30): not known here.
    assert row.due_date is None


def test_due_dates_the_draft_implies() -> None:
    class Draft:
        due_date: date | None = None
        days_until_due: int | None = 30

    assert _due_date(Draft(), date(2026, 1, 31)) == date(2026, 3, 2)  # type: ignore[arg-type]
    Draft.days_until_due = None
    assert _due_date(Draft(), date(2026, 1, 31)) is None  # type: ignore[arg-type]
    Draft.due_date = date(2026, 2, 14)
    assert _due_date(Draft(), date(2026, 1, 31)) == date(2026, 2, 14)  # type: ignore[arg-type]
