"""What the ops pages and the API share: reading the query parameters people and
scripts send, and the few documents no `billsync.sync.ops` function builds (open discrepancies).

Parsers raise ValueError with a sentence; the API turns it into a 422, the pages show it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

from billsync.core import money
from billsync.sync.ledger import Ledger
from billsync.sync.ops.discrepancies import discrepancy_json
from billsync.sync.ops.render import dumps

AS_OF_PATTERN = r"^(19[7-9][0-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}$"
"""Report dates: YYYY-MM-DD from 1970 to 2999 (the reports add and subtract days;
a bound keeps that arithmetic inside what dates can hold)."""
_AS_OF = re.compile(AS_OF_PATTERN)


def plain(document: Any) -> Any:
    """An ops ``as_json()`` document with every Decimal the ledger's JSON columns hand
    back turned into a decimal string — exactly what the CLI's ``--json`` prints (a
    float must never reach the JSON encoder)."""
    return json.loads(dumps(document))


def parse_as_of(text: str | None, today: date) -> date:
    if not text:
        return today
    if not _AS_OF.match(text):
        raise ValueError(f"'{text}' is not a date from 1970 to 2999 as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a calendar date (YYYY-MM-DD)") from None


def parse_since(text: str | None) -> datetime | None:
    """An ISO date or date-time; without a zone it is UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"'{text}' is not an ISO date or date-time (e.g. 2026-11-01 or 2026-11-01T08:00:00Z)"
        ) from None
    return utc(moment)


def utc(moment: datetime) -> datetime:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # before year 1 in UTC: "since the beginning"
        return datetime.min.replace(tzinfo=UTC)


def parse_currency(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return money.normalise_currency(text)
    except money.UnknownCurrencyError as exc:
        raise ValueError(str(exc)) from None


def currency_codes() -> list[str]:
    return sorted(money.known_currencies())


def open_discrepancies(ledger: Ledger, kind: str | None = None) -> list[dict[str, Any]]:
    """Open discrepancies, oldest first (acknowledged ones included)."""
    return [discrepancy_json(row) for row in ledger.open_discrepancies(kind)]
