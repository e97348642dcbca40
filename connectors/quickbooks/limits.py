"""Client-side throttles: stay under Intuit's limits instead of discovering them by 429.

Intuit throttles per company (realm): 500 requests a minute, 10 in flight at once and
40 batch requests a minute for one app (api-facts §2.5, §2.7). A throttled call costs a
60 s wait, so it is cheaper to pace ourselves: every request passes `RequestLimits.slot`,
which waits for a free place in the sliding one-minute windows and a free concurrency
slot. After a 429 the whole connector pauses (`pause`), not only the call that saw it.

The clock and the sleep are injected so tests move time by hand instead of waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["RequestLimits", "SlidingWindow"]

Clock = Callable[[], float]
Sleep = Callable[[float], None]
WINDOW_S = 60.0


class SlidingWindow:
    """At most ``limit`` events in any ``window_s`` seconds (an exact event log)."""

    def __init__(self, limit: int, window_s: float = WINDOW_S) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window_s = window_s
        self._events: deque[float] = deque()

    def wait_needed(self, now: float) -> float:
        """Seconds until one more event fits (0 when it fits now)."""
        horizon = now - self.window_s
        while self._events and self._events[0] <= horizon:
            self._events.popleft()
        if len(self._events) < self.limit:
            return 0.0
        return self._events[0] + self.window_s - now

    def record(self, now: float) -> None:
        self._events.append(now)


class RequestLimits:
    """The per-realm budget shared by every call of one connector instance."""

    def __init__(
        self,
        *,
        requests_per_minute: int,
        max_concurrent: int,
        batch_requests_per_minute: int,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._requests = SlidingWindow(requests_per_minute)
        self._batches = SlidingWindow(batch_requests_per_minute)
        self._in_flight = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._resume_at = 0.0
        self.waited_s = 0.0  # total time spent waiting, for logs and tests

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (after QuickBooks throttled us)."""
        with self._lock:
            self._resume_at = max(self._resume_at, self._clock() + seconds)

    @contextmanager
    def slot(self, *, batch: bool = False) -> Iterator[None]:
        """Wait for room in the windows and a concurrency slot; hold it for the call."""
        self._reserve(batch)
        with self._in_flight:
            yield

    def _reserve(self, batch: bool) -> None:
        while True:
            with self._lock:
                now = self._clock()
                wait = max(
                    self._resume_at - now,
                    self._requests.wait_needed(now),
                    self._batches.wait_needed(now) if batch else 0.0,
                )
                if wait <= 0:
                    self._requests.record(now)
                    if batch:
                        self._batches.record(now)
                    return
            self.waited_s += wait
            self._sleep(wait)
