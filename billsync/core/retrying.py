"""In-call retries, the one loop every connector's client runs its vendor calls in.

DESIGN.md "Errors, retries, the retry queue": ``transient`` and ``rate_limited`` errors
are retried in the call with jittered exponential backoff, a bounded number of times;
what still fails goes to the retry queue. Whether to repeat is decided by the error the
connector's error table made, never by the client: a retryable `ConnectorError` is
repeated, unless its table row said "later, not now" by raising `RetryLater` (a saved
error a vendor replays for as long as it keeps the idempotency key, a spent API quota,
an expired query cursor). ``auth`` errors stop the connector for the run
(`stops_connector`, the one rule every engine stage follows).

The one Retry-After rule (`wait_s`): wait what the vendor asked, but never less than the
backoff, and never more than the policy's ``max_wait_s``. Never less than the backoff:
a Retry-After of 1 s answered to a fifth attempt is a vendor still recovering, and the
backoff is what spreads a fleet of callers out. Capped: a vendor asking for ten minutes
must not hold a run's worker (and its lease) for ten minutes; the call fails, the queue
retries it later. A vendor that documents a wait but sends no Retry-After has its error
table set that wait (a connector setting), so the connector's cap is at least that.

Tests inject ``sleep`` (and ``random``): no test ever waits.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = ["RetryLater", "RetryPolicy", "call_with_retries", "retries_in_call", "stops_connector"]

T = TypeVar("T")
Sleep = Callable[[float], None]
log = get_logger("billsync.retrying")


class RetryLater(ConnectorError):
    """A retryable error that repeating the same call now cannot fix.

    The engine sees an ordinary ``transient`` / ``rate_limited`` ConnectorError and
    queues the work; only the in-call loop treats it differently (it does not repeat).
    A subclass rather than a code list, so ``with_context`` and pickling keep it."""

    @classmethod
    def of(cls, error: ConnectorError) -> RetryLater:
        """The same error, marked "not in this call"."""
        return cls(
            system=error.system,
            error_class=error.error_class,
            message=error.message,
            code=error.code,
            retry_after=error.retry_after,
            deal_id=error.deal_id,
            field=error.field,
        )


def retries_in_call(exc: BaseException) -> bool:
    """Repeat the call now: a retryable ConnectorError its table did not mark `RetryLater`."""
    return isinstance(exc, ConnectorError) and exc.is_retryable and not isinstance(exc, RetryLater)


def stops_connector(error: ConnectorError) -> bool:
    """The connector makes no more calls this run: its credentials or permissions were
    refused (``auth``), and every further call would only hammer the vendor."""
    return error.error_class is ErrorClass.AUTH


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one client retries: ``attempts`` in all (1: never repeat), a backoff drawn
    uniformly from 0 up to ``backoff_s`` doubled each attempt (at most
    ``backoff_max_s``), and no single wait longer than ``max_wait_s``."""

    attempts: int
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    max_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 <= self.backoff_s <= self.backoff_max_s <= self.max_wait_s:
            raise ValueError("need 0 <= backoff_s <= backoff_max_s <= max_wait_s")

    def backoff_ceiling(self, attempt: int) -> float:
        """The most the jittered backoff after ``attempt`` (1-based) can be."""
        return min(self.backoff_max_s, self.backoff_s * 2.0 ** (attempt - 1))

    def wait_s(self, backoff: float, retry_after: float | None) -> float:
        """The one Retry-After rule (module docstring)."""
        wanted = backoff if retry_after is None else max(backoff, retry_after)
        return min(wanted, self.max_wait_s)


def call_with_retries(
    policy: RetryPolicy,
    attempt: Callable[[], T],
    *,
    sleep: Sleep = time.sleep,
    jitter: Callable[[float, float], float] = random.uniform,
) -> T:
    """``attempt()`` until it returns, raises something `retries_in_call` refuses, or
    the attempts are spent; the last error is re-raised as it was. ``attempt`` must
    repeat the very same request each time (same idempotency key, same request id)."""

    def wait(state: RetryCallState) -> float:
        backoff = jitter(0.0, policy.backoff_ceiling(state.attempt_number))
        error = state.outcome.exception() if state.outcome else None
        after = None
        if isinstance(error, ConnectorError) and error.retry_after is not None:
            after = error.retry_after.total_seconds()
        return policy.wait_s(backoff, after)

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        retry=retry_if_exception(retries_in_call),
        sleep=sleep,
        reraise=True,
        before_sleep=_log_retry,
    )
    result: T = retrying(attempt)
    return result


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    system = error.system if isinstance(error, ConnectorError) else "connector"
    log.warning(
        f"{system}.retry",
        attempt=state.attempt_number,
        wait_s=round(state.upcoming_sleep, 3),
        error=str(error) if isinstance(error, ConnectorError) else type(error).__name__,
    )
