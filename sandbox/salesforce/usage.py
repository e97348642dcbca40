"""The org's daily API allocation (a rolling 24 hours) and the `Sforce-Limit-Info` header.

Every authenticated REST call counts, failed ones included; calls refused because the
allocation is spent do not. Once spent, calls get 403 REQUEST_LIMIT_EXCEEDED until
usage from more than 24 hours ago rolls off. Usage is kept in per-minute buckets.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta

from billsync.sandbox.core import Clock
from billsync.sandbox.salesforce.errors import request_limit_exceeded

DEFAULT_DAILY_MAX = 100_000
WINDOW = timedelta(hours=24)


class ApiUsage:
    def __init__(self, clock: Clock, daily_max: int = DEFAULT_DAILY_MAX, enforce: bool = True):
        self.clock = clock
        self._initial = (daily_max, enforce)
        self.daily_max = daily_max
        self.enforce = enforce
        self._buckets: deque[list[int]] = deque()  # [minute, count], oldest first
        self._total = 0

    def reset(self) -> None:
        """Back to the configured allocation with nothing used."""
        self.daily_max, self.enforce = self._initial
        self._clear()

    def _clear(self) -> None:
        self._buckets.clear()
        self._total = 0

    def _minute(self) -> int:
        return int(self.clock.now().timestamp() // 60)

    def used(self) -> int:
        horizon = self._minute() - int(WINDOW.total_seconds() // 60)
        while self._buckets and self._buckets[0][0] <= horizon:
            self._total -= self._buckets.popleft()[1]
        return self._total

    def count(self) -> None:
        """Count one call, or refuse it with REQUEST_LIMIT_EXCEEDED."""
        if self.enforce and self.used() >= self.daily_max:
            raise request_limit_exceeded()
        self._add(1)

    def _add(self, calls: int) -> None:
        minute = self._minute()
        if self._buckets and self._buckets[-1][0] == minute:
            self._buckets[-1][1] += calls
        else:
            self._buckets.append([minute, calls])
        self._total += calls

    def configure(self, daily_max: int | None = None, used: int | None = None) -> None:
        """Admin: change the allocation and/or pretend `used` calls were already made."""
        if daily_max is not None:
            self.daily_max = daily_max
        if used is not None:
            self._clear()
            self._add(used)
        self.enforce = True

    def header(self) -> str:
        return f"api-usage={self.used()}/{self.daily_max}"

    def describe(self) -> dict[str, int | bool]:
        used = self.used()
        return {
            "daily_max": self.daily_max,
            "used": used,
            "remaining": max(0, self.daily_max - used),
            "enforced": self.enforce,
        }
