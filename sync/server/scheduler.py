"""`billsync serve --schedule CRON`: run the sync cycle on a cron schedule inside the
server process, for installs too small to want a separate cron job.

Safety comes from the run lease, not from this thread: beside an external cron (or
in several replicas) a scheduled run that finds the lease held logs a skip and waits
for its next slot. A run is never started twice at once by this scheduler, and slots
missed while a long run was working are not made up (cron does not either).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from billsync.core.logs import get_logger
from billsync.sync.server.cron import CronSchedule

log = get_logger("billsync.server")


class ScheduledRuns:
    def __init__(
        self,
        schedule: CronSchedule,
        run_once: Callable[[], None],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.schedule = schedule
        self.run_once = run_once
        self.now = now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.next_run: datetime | None = None
        self.runs_started = 0

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the scheduler is already running")
        self._thread = threading.Thread(target=self._loop, name="billsync-schedule", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:  # money-ok: a duration
        """Stop waiting for the next slot. A run in progress finishes its stage work
        under its own lease; the process waits ``timeout`` seconds for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.next_run = self.schedule.next_after(self.now())
            log.info("schedule.next_run", at=self.next_run.isoformat())
            while not self._stop.is_set():
                remaining = (self.next_run - self.now()).total_seconds()
                if remaining <= 0:
                    break
                self._stop.wait(min(remaining, 60.0))  # re-read the clock: it may jump
            if self._stop.is_set():
                return
            self.runs_started += 1
            try:
                self.run_once()
            except Exception as exc:  # one bad run must not end the schedule
                log.exception("schedule.run_failed", error=type(exc).__name__)
