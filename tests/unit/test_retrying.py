"""The one in-call retry loop: what is repeated, how long each wait is, what is re-raised."""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest

from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.core.retrying import (
    RetryLater,
    RetryPolicy,
    call_with_retries,
    retries_in_call,
    stops_connector,
)


def error(
    error_class: ErrorClass, retry_after: float | None = None, code: str | None = None
) -> ConnectorError:
    after = None if retry_after is None else timedelta(seconds=retry_after)
    return ConnectorError(
        system="vendor", error_class=error_class, message="m", code=code, retry_after=after
    )


def later(error_class: ErrorClass) -> ConnectorError:
    return RetryLater.of(error(error_class, code="saved"))


REPEATED = [
    # (the error an attempt raised, repeated in the call?)
    (error(ErrorClass.TRANSIENT), True),
    (error(ErrorClass.RATE_LIMITED, 2), True),
    (error(ErrorClass.AUTH), False),
    (error(ErrorClass.CONFLICT), False),
    (error(ErrorClass.INVALID_DATA), False),
    (error(ErrorClass.NOT_FOUND), False),
    (later(ErrorClass.TRANSIENT), False),  # the table said: the queue, not this call
    (later(ErrorClass.RATE_LIMITED), False),
    (ValueError("a bug"), False),  # never a vendor error: never repeated
]


@pytest.mark.parametrize(("raised", "repeated"), REPEATED)
def test_what_is_repeated_is_decided_by_the_error(raised: Exception, repeated: bool) -> None:
    assert retries_in_call(raised) is repeated
    calls: list[int] = []
    sleeps: list[float] = []

    def attempt() -> str:
        calls.append(1)
        raise raised

    with pytest.raises(type(raised)) as caught:
        call_with_retries(RetryPolicy(attempts=3), attempt, sleep=sleeps.append)
    assert caught.value is raised  # re-raised as it was, not wrapped
    assert len(calls) == (3 if repeated else 1) and len(sleeps) == len(calls) - 1


def test_a_later_success_is_returned_and_attempts_are_bounded() -> None:
    outcomes: list[object] = [error(ErrorClass.TRANSIENT), error(ErrorClass.TRANSIENT), "done"]
    sleeps: list[float] = []

    def attempt() -> object:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert call_with_retries(RetryPolicy(attempts=3), attempt, sleep=sleeps.append) == "done"
    assert len(sleeps) == 2
    with pytest.raises(ConnectorError):
        call_with_retries(
            RetryPolicy(attempts=1), lambda: (_ for _ in ()).throw(error(ErrorClass.TRANSIENT))
        )


WAITS = [
    # (policy, the backoff drawn, Retry-After, the wait)
    (RetryPolicy(3), 0.4, None, 0.4),  # no Retry-After: the backoff
    (RetryPolicy(3), 0.4, 2.0, 2.0),  # the vendor asked for longer: honoured
    (RetryPolicy(3), 5.0, 1.0, 5.0),  # never less than the backoff
    (RetryPolicy(3, max_wait_s=60), 0.4, 600.0, 60.0),  # capped by the caller's maximum
    (RetryPolicy(3, backoff_max_s=30, max_wait_s=60), 0.4, 60.0, 60.0),  # QuickBooks' 60 s
    (RetryPolicy(3), 0.0, 0.0, 0.0),
]


@pytest.mark.parametrize(("policy", "backoff", "retry_after", "wait"), WAITS)
def test_the_one_retry_after_rule(
    policy: RetryPolicy, backoff: float, retry_after: float | None, wait: float
) -> None:
    assert policy.wait_s(backoff, retry_after) == wait
    sleeps: list[float] = []
    outcomes: list[object] = [error(ErrorClass.RATE_LIMITED, retry_after), "ok"]

    def attempt() -> object:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    call_with_retries(policy, attempt, sleep=sleeps.append, jitter=lambda low, high: backoff)
    assert sleeps == [wait]


CEILINGS = [
    # (policy, attempt, the largest backoff after it)
    (RetryPolicy(5, backoff_s=0.5, backoff_max_s=30), 1, 0.5),
    (RetryPolicy(5, backoff_s=0.5, backoff_max_s=30), 2, 1.0),
    (RetryPolicy(5, backoff_s=0.5, backoff_max_s=30), 4, 4.0),
    (RetryPolicy(9, backoff_s=1, backoff_max_s=30), 8, 30.0),  # the backoff's own cap
]


@pytest.mark.parametrize(("policy", "attempt", "ceiling"), CEILINGS)
def test_backoff_is_jittered_exponential(policy: RetryPolicy, attempt: int, ceiling: float) -> None:
    assert policy.backoff_ceiling(attempt) == ceiling
    drawn: list[tuple[float, float]] = []

    def jitter(low: float, high: float) -> float:
        drawn.append((low, high))
        return high

    failing = error(ErrorClass.TRANSIENT)

    def attempt_fn() -> None:
        raise failing

    with pytest.raises(ConnectorError):
        call_with_retries(policy, attempt_fn, sleep=lambda s: None, jitter=jitter)
    assert drawn[attempt - 1] == (0.0, ceiling)


@pytest.mark.parametrize(
    "changes",
    [{"attempts": 0}, {"backoff_s": -1}, {"backoff_max_s": 100, "max_wait_s": 60}],
)
def test_inconsistent_policies_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**{"attempts": 3, **changes})  # type: ignore[arg-type]


def test_retry_later_survives_context_and_pickling() -> None:
    marked = later(ErrorClass.RATE_LIMITED)
    assert marked.is_retryable and marked.code == "saved"  # the engine still queues it
    for copy in (marked.with_context(deal_id="006A"), pickle.loads(pickle.dumps(marked))):
        assert isinstance(copy, RetryLater) and not retries_in_call(copy)


@pytest.mark.parametrize(
    ("error_class", "stops"),
    [
        (ErrorClass.AUTH, True),
        (ErrorClass.TRANSIENT, False),
        (ErrorClass.RATE_LIMITED, False),
        (ErrorClass.CONFLICT, False),
        (ErrorClass.INVALID_DATA, False),
        (ErrorClass.NOT_FOUND, False),
    ],
)
def test_only_refused_credentials_stop_a_connector(error_class: ErrorClass, stops: bool) -> None:
    assert stops_connector(error(error_class)) is stops
