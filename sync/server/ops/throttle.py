"""How many wrong ops tokens a client (and everyone together) may try.

Per client address: the first ``free`` wrong tokens in the window cost nothing; each
one after that makes the client wait before its next attempt, twice as long each time
(1 s, 2 s, 4 s … up to ``max_delay``); at ``lockout_after`` wrong tokens the address is
locked out for ``lockout``. Overall: at ``overall_limit`` wrong tokens in the window,
from any mix of addresses, every attempt is refused for ``lockout`` — a ceiling on a
spread-out guesser, paid for by a locked-out operator (the 32-character token makes
guessing hopeless anyway; this keeps it from costing the server).

A refused attempt is answered 429 with ``Retry-After`` and the token it carried is
never compared, so waiting is the only way on. A right token clears the client's
count. The state lives in this process: with ``--workers N`` each worker keeps its own
(so the limits are N times as loose) — one more reason for the proxy's own limit.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Refusal(StrEnum):
    """Why a login attempt was refused: the label of the refusal metric."""

    WRONG_TOKEN = "wrong_token"  # noqa: S105 - a metric label
    THROTTLED = "throttled"  # too soon after the last wrong token
    LOCKED_OUT = "locked_out"  # this address, for the lockout
    OVERALL = "overall_limit"  # everyone, for the lockout


@dataclass(frozen=True)
class ThrottlePolicy:
    free: int = 5
    lockout_after: int = 10
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)
    base_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(seconds=60)
    overall_limit: int = 200
    max_clients: int = 10_000
    """Addresses remembered at once; the oldest is forgotten past this (memory bound)."""


@dataclass(frozen=True)
class Wait:
    reason: Refusal
    until: datetime

    def retry_after(self, now: datetime) -> int:
        """Whole seconds, at least 1 (the Retry-After header)."""
        return max(1, math.ceil((self.until - now).total_seconds()))


@dataclass
class _Client:
    failures: deque[datetime] = field(default_factory=deque)
    not_before: datetime | None = None
    locked_until: datetime | None = None


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy | None = None) -> None:
        self.policy = policy or ThrottlePolicy()
        self._clients: dict[str, _Client] = {}
        self._overall: deque[datetime] = deque()
        self._overall_until: datetime | None = None
        self._lock = threading.Lock()

    def check(self, client: str, now: datetime) -> Wait | None:
        """A reason to refuse this attempt without looking at its token, or None."""
        with self._lock:
            if self._overall_until is not None and now < self._overall_until:
                return Wait(Refusal.OVERALL, self._overall_until)
            state = self._clients.get(client)
            if state is None:
                return None
            if state.locked_until is not None and now < state.locked_until:
                return Wait(Refusal.LOCKED_OUT, state.locked_until)
            if state.not_before is not None and now < state.not_before:
                return Wait(Refusal.THROTTLED, state.not_before)
            return None

    def failed(self, client: str, now: datetime) -> None:
        """Count a wrong token from ``client``."""
        policy = self.policy
        with self._lock:
            self._expire(now)
            state = self._clients.pop(client, None) or _Client()
            self._clients[client] = state  # most recent last: the oldest is forgotten first
            state.failures.append(now)
            count = len(state.failures)
            if count >= policy.lockout_after:
                state.locked_until = now + policy.lockout
                state.failures.clear()
            elif count > policy.free:
                delay = policy.base_delay * 2 ** (count - policy.free - 1)
                state.not_before = now + min(delay, policy.max_delay)
            self._overall.append(now)
            if len(self._overall) >= policy.overall_limit:
                self._overall_until = now + policy.lockout
                self._overall.clear()
            while len(self._clients) > policy.max_clients:
                del self._clients[next(iter(self._clients))]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def _expire(self, now: datetime) -> None:
        horizon = now - self.policy.window
        while self._overall and self._overall[0] <= horizon:
            self._overall.popleft()
        for address in list(self._clients):
            state = self._clients[address]
            while state.failures and state.failures[0] <= horizon:
                state.failures.popleft()
            if not state.failures and (state.locked_until is None or state.locked_until <= now):
                del self._clients[address]
