"""`serve --schedule`: the scheduler runs the cycle when the cron slot comes, survives
a failing run, and stops at once when asked."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from billsync.sync.server.cron import CronSchedule
from billsync.sync.server.scheduler import ScheduledRuns

T = datetime(2026, 11, 23, 10, 14, 59, tzinfo=UTC)


class JumpingClock:
    """Real time passing from a chosen moment; ``jump_to`` moves the moment."""

    def __init__(self, moment: datetime) -> None:
        self.jump_to(moment)

    def jump_to(self, moment: datetime) -> None:
        self._base, self._started = moment, time.monotonic()

    def __call__(self) -> datetime:
        return self._base + timedelta(seconds=time.monotonic() - self._started)


def test_runs_in_its_slot_and_keeps_going_after_a_failed_run() -> None:
    clock = JumpingClock(datetime(2026, 11, 23, 10, 14, 59, 800_000, tzinfo=UTC))
    ran: list[datetime] = []
    second = threading.Event()

    def run_once() -> None:
        ran.append(clock())
        # The run took a while: the next slot (10:30) is 0.2 s away when it ends.
        clock.jump_to(datetime(2026, 11, 23, 10, 29, 59, 800_000, tzinfo=UTC))
        if len(ran) == 1:
            raise RuntimeError("vendor outage")  # logged; the schedule goes on
        second.set()

    scheduler = ScheduledRuns(CronSchedule.parse("*/15 * * * *"), run_once, now=clock)
    scheduler.start()
    assert second.wait(10), "the scheduler did not run twice"
    scheduler.stop(timeout=5)
    assert not scheduler.alive
    assert [moment.replace(second=0, microsecond=0).minute for moment in ran] == [15, 30]
    assert scheduler.runs_started == 2


def test_stop_does_not_wait_for_the_next_slot() -> None:
    scheduler = ScheduledRuns(CronSchedule.parse("0 0 1 1 *"), lambda: None, now=lambda: T)
    scheduler.start()
    scheduler.stop(timeout=5)
    assert not scheduler.alive
    assert scheduler.runs_started == 0
    assert scheduler.next_run == datetime(2027, 1, 1, tzinfo=UTC)
