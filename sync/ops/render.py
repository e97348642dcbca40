"""Formatting shared by the ops results and their renderers: money, times, ratios,
CSV. Money leaves here as a decimal string at the currency's precision ("1234.50",
JPY "1200"), never as a float or a JSON number."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from billsync.core import money


def money_str(amount: Decimal, currency: str) -> str:
    """The amount at the currency's minor unit (half up), as plain decimal text."""
    return format(money.quantize(amount, currency), "f")


def iso(moment: datetime | None) -> str | None:
    """UTC ISO 8601 with seconds, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def age_seconds(since: datetime | None, now: datetime) -> int | None:
    if since is None:
        return None
    return max(0, int((now - since).total_seconds()))


def human_age(seconds: int | None) -> str:
    """'45s', '12m', '5h 3m', '3d 4h' — for tables, never for JSON."""
    if seconds is None:
        return "-"
    delta = timedelta(seconds=seconds)
    if delta < timedelta(minutes=1):
        return f"{seconds}s"
    if delta < timedelta(hours=1):
        return f"{seconds // 60}m"
    if delta < timedelta(days=1):
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{delta.days}d {delta.seconds // 3600}h"


def ratio(numerator: Decimal, denominator: Decimal, *, places: int = 1) -> Decimal | None:
    """numerator ÷ denominator rounded half up to ``places``; None when undefined."""
    if denominator == 0:
        return None
    return (numerator / denominator).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def decimal_str(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _plain(value: object) -> str:
    # Numbers the ledger's JSON columns hand back as Decimal stay exact, as text.
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(document: Any) -> str:
    """The one JSON style of the ops commands: indented, UTF-8 text kept as is."""
    return json.dumps(document, indent=2, ensure_ascii=False, default=_plain)


# OWASP's CSV injection rule: a spreadsheet evaluates a cell that begins with one of
# these as a formula (=HYPERLINK(…) leaks data, @SUM(…)|cmd runs DDE), so such a cell gets
# a leading apostrophe and is shown as text. A plain number ("-12.50", a credit) is left
# alone: it is not a formula and finance needs it to stay a number.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def csv_cell(value: object) -> object:
    """A cell as it is safe to write: None empty, a would-be formula neutralised."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return value if _PLAIN_NUMBER.match(value) else "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Every CSV billsync writes goes through here, so every cell is neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return buffer.getvalue()
