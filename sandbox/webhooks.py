"""Outbound webhooks: signed, retried with backoff, optionally duplicated, in order.

Like the real senders, a failed delivery is retried with growing waits. Intuit holds
later events until the failed one is acknowledged (api-facts §2.10), so QuickBooks
deliveries go out strictly one after another; Stripe makes no ordering promise and its
deliveries are independent. Each route (`<url>/webhooks/<route>`: one per Stripe account,
one per Intuit app) has its own queue, so a failing receiver for one company never holds
back another's. Waits are scaled down (seconds, not hours) because this is
a test tool; `retry_schedule_s` sets them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests

from billsync.sandbox.core import Signer

DEFAULT_RETRY_SCHEDULE_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
DELIVERY_TIMEOUT_S = 10


@dataclass
class Delivery:
    id: int
    provider: str
    """The route: deliveries go to `<url>/webhooks/<provider>`."""
    body: bytes
    sign: Signer
    copies: int
    ordered: bool = False
    attempts: int = 0
    delivered: bool = False
    last_status: int | None = None
    last_error: str | None = None
    created_at: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "attempts": self.attempts,
            "delivered": self.delivered,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "bytes": len(self.body),
        }


class WebhookOutbox:
    """Implements `WebhookSink`; runs one sender task per route."""

    def __init__(
        self,
        url: str | None = None,
        retry_schedule_s: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_S,
    ) -> None:
        self.url = url
        self.retry_schedule_s = retry_schedule_s
        self.duplicates = 1
        self.log: deque[Delivery] = deque(maxlen=10_000)
        self._queues: dict[str, asyncio.Queue[Delivery]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._next_id = 1
        self._started = False

    def start(self) -> None:
        """From now on deliveries are sent (before, e.g. while seeding, only logged)."""
        self._started = True

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def deliver(self, provider: str, body: bytes, sign: Signer, *, ordered: bool = False) -> None:
        delivery = Delivery(self._next_id, provider, body, sign, self.duplicates, ordered)
        self._next_id += 1
        self.log.append(delivery)
        if self.url and self._started:
            self._queue(provider).put_nowait(delivery)

    def _queue(self, provider: str) -> asyncio.Queue[Delivery]:
        # Called on the event loop (from a request handler), so the task can start here.
        queue = self._queues.get(provider)
        if queue is None:
            queue = self._queues[provider] = asyncio.Queue()
            self._tasks.append(asyncio.create_task(self._run(queue)))
        return queue

    def pending(self) -> int:
        return sum(q.qsize() for q in self._queues.values())

    async def _run(self, queue: asyncio.Queue[Delivery]) -> None:
        while True:
            delivery = await queue.get()
            if delivery.ordered:
                await self._deliver_until_acknowledged(delivery)
            else:
                task = asyncio.create_task(self._deliver_until_acknowledged(delivery))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)

    async def _deliver_until_acknowledged(self, delivery: Delivery) -> None:
        for wait in (0.0, *self.retry_schedule_s):
            if wait:
                await asyncio.sleep(wait)
            if await self._attempt(delivery):
                delivery.delivered = True
                return

    async def _attempt(self, delivery: Delivery) -> bool:
        if not self.url:
            return False
        target = f"{self.url.rstrip('/')}/webhooks/{delivery.provider}"
        delivery.attempts += 1
        ok = True
        for _ in range(delivery.copies):
            headers = {"Content-Type": "application/json", **delivery.sign(delivery.body)}
            try:
                response = await asyncio.to_thread(
                    requests.post,  # a fresh connection per attempt: threads share nothing
                    target,
                    data=delivery.body,
                    headers=headers,
                    timeout=DELIVERY_TIMEOUT_S,
                )
            except requests.RequestException as exc:
                delivery.last_status, delivery.last_error = None, type(exc).__name__
                ok = False
                continue
            delivery.last_status = response.status_code
            delivery.last_error = None if response.ok else response.text[:200]
            ok = ok and response.ok
        return ok
