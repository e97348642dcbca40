"""A client-side request budget: stay under a vendor's limit instead of meeting it as 429s.

A sliding window rather than a token bucket: a bucket lets a full burst through at the
end of one window and another at the start of the next, which a vendor counting per
rolling window (a per-second or per-minute limit, the sandbox's) answers with 429s. The
window is an exact log of when each request left.

`RateLimiter` is what a client shares between its threads: one window every request
passes, optional further windows only some requests pass (a vendor's batch budget),
and a pause that holds every caller after the vendor throttled one of them. The clock
and the sleep are injected, so tests move time by hand instead of waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["RateLimiter", "SlidingWindow"]

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class SlidingWindow:
    """At most ``limit`` events in any ``window_s`` seconds. Not thread-safe on its own:
    use it through one `RateLimiter`, which holds the lock."""

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window_s <= 0:
            raise ValueError("window_s must be positive")
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


class RateLimiter:
    """Waits for room in its window (and any ``also`` windows), shared by threads."""

    def __init__(self, window: SlidingWindow, *, clock: Clock, sleep: Sleep) -> None:
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._resume_at = 0.0

    @classmethod
    def per(
        cls,
        limit: int,
        window_s: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> RateLimiter:
        """At most ``limit`` requests in any ``window_s`` seconds."""
        return cls(SlidingWindow(limit, window_s), clock=clock, sleep=sleep)

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (the vendor throttled one of them)."""
        with self._lock:
            self._resume_at = max(self._resume_at, self._clock() + seconds)

    def acquire(self, *also: SlidingWindow) -> None:
        """Wait until the request fits every window and no pause holds, then count it.

        The lock is not held while sleeping: a waiting thread does not block the others'
        bookkeeping, and each re-checks on waking (another may have taken the room)."""
        while True:
            with self._lock:
                now = self._clock()
                windows = (self.window, *also)
                wait = max(self._resume_at - now, *(w.wait_needed(now) for w in windows))
                if wait <= 0:
                    for w in windows:
                        w.record(now)
                    return
            self._sleep(wait)
