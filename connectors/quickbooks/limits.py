"""Client-side throttles: stay under Intuit's limits instead of discovering them by 429.

Intuit throttles per company (realm): 500 requests a minute, 10 in flight at once and
40 batch requests a minute for one app (api-facts §2.5, §2.7). A throttled call costs a
60 s wait, so it is cheaper to pace ourselves: every request passes `RequestLimits.slot`,
which waits for a free place in the sliding one-minute windows (the core's
`RateLimiter`) and a free concurrency slot. After a 429 the whole connector pauses
(`pause`), not only the call that saw it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from billsync.core.ratelimit import RateLimiter, SlidingWindow

__all__ = ["WINDOW_S", "RequestLimits"]

Clock = Callable[[], float]
Sleep = Callable[[float], None]
WINDOW_S = 60.0


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
        self._requests = RateLimiter.per(requests_per_minute, WINDOW_S, clock=clock, sleep=sleep)
        # Counted only through `_requests`, which holds the lock for both windows.
        self._batches = SlidingWindow(batch_requests_per_minute, WINDOW_S)
        self._in_flight = threading.BoundedSemaphore(max_concurrent)

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (after QuickBooks throttled us)."""
        self._requests.pause(seconds)

    @contextmanager
    def slot(self, *, batch: bool = False) -> Iterator[None]:
        """Wait for room in the windows and a concurrency slot; hold it for the call."""
        if batch:
            self._requests.acquire(self._batches)
        else:
            self._requests.acquire()
        with self._in_flight:
            yield
