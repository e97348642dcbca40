"""Column types that keep money exact and time zone-aware on every backend.

SQLite has no exact decimal type (its NUMERIC affinity goes through a C double) and
no time zone support (SQLAlchemy's SQLite DATETIME drops ``tzinfo``). These
decorators make both backends behave the same, so a test on SQLite means something
for PostgreSQL.
"""

from __future__ import annotations

import decimal
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

MONEY_PRECISION = 38
MONEY_SCALE = 12

# Enough digits for any NUMERIC(38, 12) value and its sums; Inexact is trapped so that
# arithmetic that would round raises instead of silently losing a cent.
_EXACT = decimal.Context(prec=80, traps=[decimal.Inexact, decimal.InvalidOperation])


def canonical_decimal(value: Decimal) -> Decimal:
    """The one representation a money value has when it leaves the ledger.

    PostgreSQL returns NUMERIC(38, 12) padded to twelve places and SQLite returns
    what was stored; normalising both (no trailing fractional zeros, no exponent for
    whole numbers, no negative zero) makes the two backends return equal *and*
    identically printed values.
    """
    if value.is_zero():
        return Decimal(0)
    if value == value.to_integral_value(context=_EXACT):
        return value.quantize(Decimal(1), context=_EXACT)
    return value.normalize(context=_EXACT)


def exact_sum(values: list[Decimal]) -> Decimal:
    """Add Decimals without the default 28-digit context rounding large totals."""
    total = Decimal(0)
    for value in values:
        total = _EXACT.add(total, value)
    return canonical_decimal(total)


def check_money(value: object) -> Decimal:
    """Validate a money value: Decimal or int, finite, within NUMERIC(38, 12).

    Floats are refused outright (a binary float cannot hold 0.1); values with more
    than twelve fractional digits are refused rather than rounded, because
    PostgreSQL would round them and SQLite would not.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"money must be decimal.Decimal or int, not {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError(f"money must be finite, got {amount}")
    try:
        canonical = canonical_decimal(amount)
    except decimal.DecimalException:
        raise ValueError(f"money value out of range: {amount}") from None
    exponent = canonical.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MONEY_SCALE:
        raise ValueError(f"money has more than {MONEY_SCALE} decimal places: {amount}")
    if canonical.adjusted() >= MONEY_PRECISION - MONEY_SCALE:
        raise ValueError(f"money exceeds {MONEY_PRECISION - MONEY_SCALE} integer digits")
    return canonical


class Money(sa.types.TypeDecorator[Decimal]):
    """An exact decimal amount: NUMERIC(38, 12) on PostgreSQL, TEXT on SQLite."""

    impl = sa.Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = check_money(value)
        # Plain notation, so the TEXT column reads naturally and never holds "1E+3".
        return format(amount, "f") if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return canonical_decimal(Decimal(value))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that is timezone-aware UTC going in and coming out.

    Naive datetimes are refused: a naive value is ambiguous, and the ledger compares
    lease and retry times across processes. SQLite stores the UTC wall time (its
    fixed-width text sorts correctly); PostgreSQL stores timestamptz.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: pass a timezone-aware value")
        as_utc = value.astimezone(UTC)
        return as_utc.replace(tzinfo=None) if dialect.name == "sqlite" else as_utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


def json_type() -> sa.types.TypeEngine[Any]:
    """JSON everywhere, JSONB on PostgreSQL (indexable, compact, compared by value)."""
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def id_type() -> sa.types.TypeEngine[int]:
    """BIGINT ids on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY
    aliases the rowid and so autoincrements."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
