"""Money and time types: exact on both backends, floats and naive times refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from billsync.sync.ledger import Ledger
from billsync.sync.ledger.schema import invoices
from billsync.sync.ledger.types import canonical_decimal, check_money, exact_sum

BIG = Decimal("12345678901234567.123456")
WIDEST = Decimal("12345678901234567890123456.123456789012")  # 26 + 12 digits


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (Decimal("0.300000000000"), "0.3"),
        (Decimal("1E+3"), "1000"),
        (Decimal("12.50"), "12.5"),
        (Decimal("-0.00"), "0"),
        (7, "7"),
        (WIDEST, str(WIDEST)),
    ],
)
def test_check_money_canonicalises(given, expected):
    assert str(check_money(given)) == expected


@pytest.mark.parametrize("bad", [0.1, 1.0, True, "1.00", None])
def test_check_money_refuses_non_decimals(bad):
    with pytest.raises(TypeError):
        check_money(bad)


@pytest.mark.parametrize(
    "bad",
    [
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("0.0000000000001"),  # 13 places: PostgreSQL would round it
        Decimal("1E+26"),  # 27 integer digits
    ],
)
def test_check_money_refuses_what_numeric_38_12_cannot_hold(bad):
    with pytest.raises(ValueError):
        check_money(bad)


def test_trailing_zeros_beyond_twelve_places_are_fine():
    assert check_money(Decimal("1.10000000000000000")) == Decimal("1.1")


def test_exact_sum_does_not_round_at_28_digits():
    assert exact_sum([WIDEST, WIDEST]) == Decimal("24691357802469135780246912.246913578024")
    assert exact_sum([Decimal("0.1"), Decimal("0.2")]) == Decimal("0.3")
    assert canonical_decimal(Decimal("0E-12")) == Decimal(0)


def _insert_invoice(ledger: Ledger, **overrides):
    values = {
        "target": "stripe",
        "external_id": "in_1",
        "currency": "USD",
        "total": Decimal("1"),
        "amount_paid": Decimal("0"),
        "balance": Decimal("1"),
        "status": "open",
        "created_at": datetime(2025, 1, 1, tzinfo=UTC),
        "updated_at": datetime(2025, 1, 1, tzinfo=UTC),
    }
    values.update(overrides)
    with ledger.engine.begin() as conn:
        conn.execute(sa.insert(invoices).values(**values))


@pytest.mark.parametrize("amount", [BIG, WIDEST, Decimal("0.000000000001"), Decimal("-42.10")])
def test_money_round_trips_exactly(ledger, amount):
    _insert_invoice(ledger, total=amount)
    stored = ledger.get_invoice("stripe", "in_1")
    assert stored is not None
    assert isinstance(stored.total, Decimal)
    assert stored.total == amount
    assert str(stored.total) == str(canonical_decimal(amount))


def test_money_column_refuses_float_at_the_driver_boundary(ledger):
    with pytest.raises(sa.exc.StatementError) as caught:
        _insert_invoice(ledger, total=0.1)
    assert isinstance(caught.value.orig, TypeError)


def test_money_is_text_on_sqlite_and_numeric_on_postgres(ledger, is_postgres):
    _insert_invoice(ledger, total=BIG)
    with ledger.engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT total FROM invoices")).scalar_one()
    if is_postgres:
        assert raw == BIG  # psycopg returns Decimal for NUMERIC
    else:
        assert raw == "12345678901234567.123456"


def test_aware_datetimes_come_back_as_utc(ledger):
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2025, 6, 30, 23, 30, 15, 123456, tzinfo=plus_two)
    _insert_invoice(ledger, created_at=local)
    stored = ledger.get_invoice("stripe", "in_1")
    assert stored is not None
    assert stored.created_at == local
    assert stored.created_at.tzinfo is UTC
    assert stored.created_at.hour == 21


def test_naive_datetimes_are_refused(ledger):
    with pytest.raises(sa.exc.StatementError) as caught:
        _insert_invoice(ledger, created_at=datetime(2025, 1, 1))
    assert isinstance(caught.value.orig, ValueError)


def test_time_comparisons_follow_instants_not_offsets(ledger):
    # SQLite compares the stored text: it must be UTC so an earlier instant written
    # with a later local wall time still sorts first.
    east = timezone(timedelta(hours=10))
    _insert_invoice(ledger, external_id="a", created_at=datetime(2025, 1, 1, 15, tzinfo=east))
    _insert_invoice(ledger, external_id="b", created_at=datetime(2025, 1, 1, 6, tzinfo=UTC))
    cutoff = datetime(2025, 1, 1, 5, 30, tzinfo=UTC)
    with ledger.engine.connect() as conn:
        earlier = conn.execute(
            sa.select(invoices.c.external_id).where(invoices.c.created_at < cutoff)
        ).scalars()
        assert list(earlier) == ["a"]
