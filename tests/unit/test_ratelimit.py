"""The one sliding-window limiter, on a clock that only moves when code sleeps."""

from __future__ import annotations

import threading

import pytest

from billsync.core.ratelimit import RateLimiter, SlidingWindow


class FakeTime:
    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


WINDOW_CASES = [
    # (limit, window_s, events recorded at, asked at, seconds to wait)
    (2, 10.0, [0, 1], 5, 5),
    (2, 10.0, [0, 1], 9, 1),
    (2, 10.0, [0, 1], 10, 0),  # the first event leaves exactly at the window's end
    (2, 10.0, [0], 0, 0),
    (1, 1.05, [100.0], 100.25, 0.8),
    (3, 60.0, [0, 0, 0], 30, 30),
]


@pytest.mark.parametrize(("limit", "window_s", "events", "at", "wait"), WINDOW_CASES)
def test_sliding_window(
    limit: int, window_s: float, events: list[float], at: float, wait: float
) -> None:
    window = SlidingWindow(limit, window_s)
    for event in events:
        window.record(event)
    assert window.wait_needed(at) == pytest.approx(wait)


@pytest.mark.parametrize(("limit", "window_s"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_impossible_windows_are_refused(limit: int, window_s: float) -> None:
    with pytest.raises(ValueError):
        SlidingWindow(limit, window_s)


def test_a_burst_waits_for_the_oldest_request_to_leave() -> None:
    time = FakeTime()
    limiter = RateLimiter.per(25, 1.05, clock=time.clock, sleep=time.sleep)
    for _ in range(25):
        limiter.acquire()
        time.now += 0.01
    assert time.sleeps == []
    limiter.acquire()  # the 26th within the window waits for the first to age out
    assert time.sleeps == [pytest.approx(0.80)]


def test_extra_windows_count_only_the_requests_that_pass_them() -> None:
    time = FakeTime(0.0)
    limiter = RateLimiter.per(3, 60.0, clock=time.clock, sleep=time.sleep)
    batches = SlidingWindow(1, 60.0)
    limiter.acquire(batches)
    limiter.acquire()
    assert time.sleeps == []
    limiter.acquire(batches)  # the batch budget is spent: wait for its window
    assert time.sleeps == [60.0]
    limiter.acquire()
    assert time.sleeps == [60.0]  # the plain budget had room again


def test_a_pause_holds_every_caller() -> None:
    time = FakeTime(0.0)
    limiter = RateLimiter.per(100, 60.0, clock=time.clock, sleep=time.sleep)
    limiter.pause(60)
    limiter.pause(10)  # a shorter pause never shortens a longer one
    limiter.acquire()
    assert time.sleeps == [60.0]


def test_threads_share_one_budget() -> None:
    lock = threading.Lock()
    time = FakeTime(0.0)

    def clock() -> float:
        with lock:
            return time.now

    def sleep(seconds: float) -> None:
        with lock:
            time.sleeps.append(seconds)
            time.now += seconds

    limiter = RateLimiter.per(5, 1.0, clock=clock, sleep=sleep)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 20 requests at 5 a second: the last cannot leave before 3 seconds have passed.
    assert time.now >= 3.0
