"""QuickBooks' ways of writing time.

QBO writes timestamps in the company's time zone with an explicit offset
(`2026-03-01T10:33:39-07:00`), response `time` stamps with milliseconds, and reads a
`changedSince` or a query literal without an offset as company-local time. The sandbox
company sits at a fixed UTC-07:00 (Pacific daylight time, no DST switching), so a
connector that assumes naive timestamps are UTC is caught here as it would be by the
real service.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

COMPANY_TZ = timezone(timedelta(hours=-7))


def stamp(moment: datetime) -> str:
    """MetaData times: second precision, company offset."""
    return moment.astimezone(COMPANY_TZ).isoformat(timespec="seconds")


def response_time(moment: datetime) -> str:
    """The `time` field of every response: milliseconds, company offset."""
    return moment.astimezone(COMPANY_TZ).isoformat(timespec="milliseconds")


def webhook_time(moment: datetime) -> str:
    """Webhook `lastUpdated` / CloudEvents `time`: UTC with a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def company_date(moment: datetime) -> date:
    return moment.astimezone(COMPANY_TZ).date()


def parse_moment(text: str) -> datetime:
    """A QBO date or datetime literal; naive values are company-local. ValueError if bad."""
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=COMPANY_TZ)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=COMPANY_TZ)
    return moment
