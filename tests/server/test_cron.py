"""Cron expressions for `billsync serve --schedule`: next times and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billsync.sync.server.cron import CronError, CronSchedule

T = datetime(2026, 11, 23, 10, 7, 30, tzinfo=UTC)  # a Monday


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/15 * * * *", at(2026, 11, 23, 10, 15)),
        ("* * * * *", at(2026, 11, 23, 10, 8)),
        ("0 * * * *", at(2026, 11, 23, 11, 0)),
        ("5/20 * * * *", at(2026, 11, 23, 10, 25)),
        ("30 2 * * *", at(2026, 11, 24, 2, 30)),
        ("0 9 * * mon-fri", at(2026, 11, 24, 9, 0)),
        ("0 9 * * 0", at(2026, 11, 29, 9, 0)),  # Sunday
        ("0 9 * * 7", at(2026, 11, 29, 9, 0)),  # 7 is Sunday too
        ("0 0 1 jan *", at(2027, 1, 1, 0, 0)),
        ("0 0 31 * *", at(2026, 12, 31, 0, 0)),  # November has no 31st
        ("0 0 29 2 *", at(2028, 2, 29, 0, 0)),  # the next leap day
        ("0 12 1 * fri", at(2026, 11, 27, 12, 0)),  # restricted day fields: either matches
        ("0,30 8-9 * * *", at(2026, 11, 24, 8, 0)),
        ("59 23 31 12 *", at(2026, 12, 31, 23, 59)),
    ],
)
def test_next_after(expression: str, expected: datetime) -> None:
    schedule = CronSchedule.parse(expression)
    found = schedule.next_after(T)
    assert found == expected
    assert schedule.matches(found)


def test_next_is_strictly_after_a_matching_minute() -> None:
    schedule = CronSchedule.parse("*/15 * * * *")
    assert schedule.next_after(at(2026, 11, 23, 10, 15)) == at(2026, 11, 23, 10, 30)


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("* * * *", "five"),
        ("61 * * * *", "minute value 61 is outside 0-59"),
        ("* 24 * * *", "hour value 24"),
        ("* * 0 * *", "day of month value 0"),
        ("* * * 13 *", "month value 13"),
        ("* * * * 8", "day of week value 8"),
        ("*/0 * * * *", "minute value 0"),
        ("10-5 * * * *", "runs backwards"),
        ("x * * * *", "is not a number"),
        ("0 0 30 2 *", "never matches"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, words: str) -> None:
    with pytest.raises(CronError, match=words):
        CronSchedule.parse(expression).next_after(T)
