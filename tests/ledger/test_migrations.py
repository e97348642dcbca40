"""Migrations: from empty to head, and head is exactly what schema.py declares."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from billsync.sync.ledger import current_revision, head_revision, is_current, upgrade_to_head
from billsync.sync.ledger.migrate import MIGRATIONS_DIR
from billsync.sync.ledger.schema import metadata

REPO = Path(__file__).resolve().parents[2]


def test_empty_database_is_not_current(engine):
    assert current_revision(engine) is None
    assert not is_current(engine)


def test_upgrade_from_empty_reaches_head(engine):
    upgrade_to_head(engine)
    assert current_revision(engine) == head_revision() == "0011"
    assert is_current(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert set(metadata.tables) <= tables


def test_upgrade_is_idempotent(engine):
    upgrade_to_head(engine)
    upgrade_to_head(engine)
    assert is_current(engine)


def test_upgrade_accepts_a_url(ledger_url, engine):
    upgrade_to_head(ledger_url)
    assert is_current(engine)


def test_migrated_schema_matches_metadata(engine):
    upgrade_to_head(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_constraints_are_named_by_convention(migrated):
    inspector = sa.inspect(migrated)
    uniques = {uc["name"] for uc in inspector.get_unique_constraints("work_items")}
    assert "uq_work_items_kind_key" in uniques
    checks = {ck["name"] for ck in inspector.get_check_constraints("inbox")}
    assert "ck_inbox_status" in checks


def test_migration_scripts_ship_in_the_package():
    # setuptools' find_packages only ships directories that have an __init__.py;
    # the .mako template rides along through package-data in pyproject.toml.
    for directory in (MIGRATIONS_DIR, MIGRATIONS_DIR / "versions"):
        assert (directory / "__init__.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert '"*.mako"' in (REPO / "pyproject.toml").read_text()


def test_concurrent_upgrades_from_empty_both_succeed(ledger_url):
    """Replicas starting together each migrate; the second waits for the first and then
    finds the schema at head (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE)."""
    from billsync.sync.ledger import create_ledger_engine
    from tests.ledger.conftest import run_concurrently

    engines = [create_ledger_engine(ledger_url) for _ in range(3)]
    try:
        run_concurrently(lambda i: upgrade_to_head(engines[i]), 3)
        assert all(is_current(engine) for engine in engines)
    finally:
        for engine in engines:
            engine.dispose()


def test_a_0005_ledger_with_money_upgrades_and_keeps_working(engine):
    """A ledger written by the previous release (payments as accumulated events, no
    derived columns) upgrades in place; its invoices show their stored figures until
    their next read from the target, and the legacy rows are read as facts."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from alembic import command

    from billsync.core.canonical import InvoiceMoney, MoneyFact
    from billsync.sync.engine.writeback import deal_writeback
    from billsync.sync.ledger import Ledger
    from billsync.sync.ledger.migrate import alembic_config

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0005")
    now = datetime(2026, 11, 30, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO invoices (target, external_id, deal_id, currency, total, "
                "amount_paid, balance, status, created_at, updated_at) VALUES "
                "('quickbooks', '145', 'deal-1', 'USD', '100', '40', '60', 'open', :t, :t)"
            ),
            {"t": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO payments (provider, provider_payment_id, invoice_target, "
                "invoice_external_id, kind, amount, currency, occurred_at, recorded_at) "
                "VALUES ('quickbooks', 'P1:invoice:145', 'quickbooks', '145', 'payment', "
                "'40', 'USD', :t, :t)"
            ),
            {"t": now},
        )
    upgrade_to_head(engine)
    ledger = Ledger(engine)
    stored = ledger.get_invoice("quickbooks", "145")
    assert stored is not None and stored.money_status is None and stored.balance == 60
    facts = ledger.invoice_facts("quickbooks", "145")
    assert [f.fact_id for f in facts] == ["P1:invoice:145"]
    assert deal_writeback("deal-1", stored, facts).billing_status == "Partially Paid"
    fresh = InvoiceMoney(
        target="quickbooks", external_id="145", currency="USD", status="paid",
        net=Decimal(100), tax=Decimal(0), total=Decimal(100),
        facts=tuple(
            MoneyFact(fact_id=f"P{n}:invoice:145", kind="payment", amount=Decimal(paid),
                      occurred_at=now)
            for n, paid in ((1, 40), (2, 60))
        ),
    )  # fmt: skip
    after = ledger.record_invoice_money(fresh).after
    assert after.money_status == "paid" and after.balance == 0
    assert len(ledger.payments_for_invoice("quickbooks", "145")) == 2


def test_a_0009_ledger_reads_unapplied_money_as_its_own_kind(engine):
    """Up to 0009 a QuickBooks payment's UnappliedAmt was mirrored as a payment of the
    invoice; 0010 makes those facts kind ``unapplied``, so the next derivation never
    lets them lower the balance."""
    from datetime import UTC, datetime

    from alembic import command

    from billsync.core.canonical import MoneyFactKind
    from billsync.sync.ledger import Ledger
    from billsync.sync.ledger.migrate import alembic_config

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0009")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with engine.begin() as conn:
        for fact_id, amount in (("P1:invoice:7", "100"), ("P1:invoice:7:unapplied", "25")):
            conn.execute(
                sa.text(
                    "INSERT INTO payments (provider, provider_payment_id, invoice_target, "
                    "invoice_external_id, kind, amount, currency, occurred_at, recorded_at) "
                    "VALUES ('quickbooks', :id, 'quickbooks', '7', 'payment', :amount, "
                    "'USD', :t, :t)"
                ),
                {"id": fact_id, "amount": amount, "t": now},
            )
    upgrade_to_head(engine)
    kinds = {f.fact_id: f.kind for f in Ledger(engine).invoice_facts("quickbooks", "7")}
    assert kinds == {
        "P1:invoice:7": MoneyFactKind.PAYMENT,
        "P1:invoice:7:unapplied": MoneyFactKind.UNAPPLIED,
    }


def test_a_0010_ledger_knows_its_targets_as_connections_of_their_kind(engine):
    """Up to 0010 every target name was a connector's name; 0011 records each one found
    as a connection of that kind, so a single-company ledger keeps working unchanged and
    the first start with an account pins it."""
    from datetime import UTC, datetime

    from alembic import command

    from billsync.sync.ledger import Ledger
    from billsync.sync.ledger.connections import ConnectionPin
    from billsync.sync.ledger.migrate import alembic_config

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0010")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO customer_links (target, account_id, external_id, updated_at) "
                "VALUES ('stripe', '001A', 'cus_1', :t)"
            ),
            {"t": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO payments (provider, provider_payment_id, invoice_target, "
                "invoice_external_id, kind, amount, currency, occurred_at, recorded_at) "
                "VALUES ('quickbooks', 'P1:invoice:7', 'quickbooks', '7', 'payment', 100, "
                "'USD', :t, :t)"
            ),
            {"t": now},
        )
    upgrade_to_head(engine)
    ledger = Ledger(engine)
    assert ledger.pinned_connections() == {
        "quickbooks": ConnectionPin("quickbooks"),
        "stripe": ConnectionPin("stripe"),
    }
    assert ledger.pin_connections({"quickbooks": ConnectionPin("quickbooks", "9130")}) == []
    assert ledger.pinned_connections()["quickbooks"] == ConnectionPin("quickbooks", "9130")
