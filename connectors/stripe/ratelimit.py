"""A client-side request budget, so Stripe's rate limit is not what slows billsync down.

Stripe allows 25 requests/s with test keys and 100/s with live keys (api-facts §3.9);
stripe-python never retries a plain 429, and each 429 costs a back-off.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``per_second`` requests in any one-second window, shared by threads.

    A sliding window rather than a token bucket: a bucket lets a full burst through at
    the end of one second and another at the start of the next, which a limiter that
    counts per rolling second (Stripe's, the sandbox's) answers with 429s. The window is
    a little longer than a second: requests arrive later than they leave, by varying
    amounts, and two sent exactly a second apart may land 0.99 s apart.
    """

    WINDOW_S = 1.05

    def __init__(
        self,
        per_second: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = per_second
        self._monotonic = monotonic
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self._prune(self._monotonic())
            if len(self._sent) >= self._rate:
                self._sleep(self.WINDOW_S - (now - self._sent[0]))
                now = self._prune(self._monotonic())
            self._sent.append(now)

    def _prune(self, now: float) -> float:
        while self._sent and now - self._sent[0] >= self.WINDOW_S:
            self._sent.popleft()
        return now
