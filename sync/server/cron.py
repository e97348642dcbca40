"""Five-field cron expressions for `billsync serve --schedule`, evaluated in UTC.

``minute hour day-of-month month day-of-week`` with ``*``, ``a``, ``a-b``, ``*/n``,
``a-b/n`` and comma lists; month and weekday names (``jan``, ``mon``); weekday 0 and 7
are Sunday. As in Vixie cron, when both day fields are restricted a day matches if
either does (``0 9 1 * mon`` runs on the 1st and on every Monday). Small enough to
own rather than depend on a package for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

# name, lowest, highest, names (index + lowest = value)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)
_SEARCH_LIMIT = timedelta(days=366 * 5)  # `0 0 29 2 mon` may wait years; none waits longer


class CronError(ValueError):
    """A schedule that cannot be parsed; the message names the field and the fix."""


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday (7 folded into 0)
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        parts = expression.split()
        if len(parts) != 5:
            raise CronError(
                f"schedule {expression!r} has {len(parts)} fields; cron needs five: "
                "minute hour day-of-month month day-of-week (e.g. '*/15 * * * *')"
            )
        values = [_parse_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(0 if day == 7 else day for day in values[4])
        return cls(
            expression=expression,
            minutes=values[0],
            hours=values[1],
            days=values[2],
            months=values[3],
            weekdays=weekdays,
            days_restricted=parts[2] != "*",
            weekdays_restricted=parts[4] != "*",
        )

    def matches(self, moment: datetime) -> bool:
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.month in self.months
            and self._day_matches(moment)
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after ``moment`` (same timezone)."""
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = moment + _SEARCH_LIMIT
        while candidate <= limit:
            if candidate.month not in self.months:
                candidate = _first_of_next_month(candidate)
            elif not self._day_matches(candidate):
                candidate = (candidate + timedelta(days=1)).replace(hour=0, minute=0)
            elif candidate.hour not in self.hours:
                candidate = (candidate + timedelta(hours=1)).replace(minute=0)
            elif candidate.minute not in self.minutes:
                candidate += timedelta(minutes=1)
            else:
                return candidate
        raise CronError(f"schedule {self.expression!r} never matches a real date")

    def _day_matches(self, moment: datetime) -> bool:
        day_ok = moment.day in self.days
        weekday_ok = (moment.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


def _first_of_next_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month, day=1, hour=0, minute=0)


def _parse_field(
    text: str, name: str, low: int, high: int, names: tuple[str, ...]
) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(item, name, low, high, names))
    return frozenset(values)


def _parse_item(item: str, name: str, low: int, high: int, names: tuple[str, ...]) -> range:
    span, _, step_text = item.partition("/")
    step = 1
    if step_text:
        step = _number(step_text, name, 1, high - low + 1, ())
    if span == "*":
        first, last = low, high
    elif "-" in span:
        start, _, end = span.partition("-")
        first, last = _number(start, name, low, high, names), _number(end, name, low, high, names)
        if first > last:
            raise CronError(f"{name} range {span!r} runs backwards; write it low-high")
    else:
        first = _number(span, name, low, high, names)
        last = high if step_text else first  # `5/15` means 5, 20, 35, 50
    return range(first, last + 1, step)


def _number(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    lowered = text.strip().lower()
    if lowered in names:
        return names.index(lowered) + (1 if names is _MONTHS else 0)
    if not lowered.isdigit():
        raise CronError(f"{name} value {text!r} is not a number between {low} and {high}")
    value = int(lowered)
    if not low <= value <= high:
        raise CronError(f"{name} value {value} is outside {low}-{high}")
    return value
