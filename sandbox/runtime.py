"""The frame around each system's app: call counting, fault injection, rate limits.

Order per request: count it, maybe inject a fault (latency, 5xx, 429, dropped
connection), enforce the vendor's rate limits, then let the system answer.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billsync.sandbox.core import RateLimit, RateLimitMode, SandboxSystem


class CallCounter:
    """API calls per system and endpoint since the last reset (what benchmarks read)."""

    def __init__(self) -> None:
        self._calls: dict[str, Counter[str]] = defaultdict(Counter)

    def record(self, system: str, endpoint: str) -> None:
        self._calls[system][endpoint] += 1

    def reset(self) -> None:
        self._calls.clear()

    def snapshot(self) -> dict[str, Any]:
        systems = {name: dict(sorted(c.items())) for name, c in sorted(self._calls.items())}
        totals = {name: sum(c.values()) for name, c in systems.items()}
        return {"systems": systems, "totals": totals}


@dataclass
class FaultPlan:
    """Faults from `POST /_sandbox/faults`; `{}` clears them."""

    systems: frozenset[str] = frozenset()
    latency_ms: int = 0
    error_rate_5xx: float = 0.0
    rate_429: float = 0.0
    drop_rate: float = 0.0
    drop_phase: str = "random"  # before | after (the request was processed) | random
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FaultPlan:
        known = {
            "systems",
            "latency_ms",
            "error_rate_5xx",
            "rate_429",
            "drop_rate",
            "drop_phase",
            "seed",
        }
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        systems = body.get("systems") or ["salesforce", "quickbooks", "stripe"]
        plan = cls(
            systems=frozenset(systems),
            latency_ms=int(body.get("latency_ms", 0)),
            error_rate_5xx=_rate(body, "error_rate_5xx"),
            rate_429=_rate(body, "rate_429"),
            drop_rate=_rate(body, "drop_rate"),
            drop_phase=str(body.get("drop_phase", "random")),
            seed=body.get("seed"),
        )
        if plan.drop_phase not in {"before", "after", "random"}:
            raise ValueError("drop_phase must be before, after or random")
        plan.rng.seed(plan.seed)
        return plan

    def describe(self) -> dict[str, Any]:
        return {
            "systems": sorted(self.systems),
            "latency_ms": self.latency_ms,
            "error_rate_5xx": self.error_rate_5xx,
            "rate_429": self.rate_429,
            "drop_rate": self.drop_rate,
            "drop_phase": self.drop_phase,
        }


def _rate(body: dict[str, Any], key: str) -> float:
    # Probabilities, not money: float is right here.
    value = float(body.get(key, 0))  # money-ok
    if not 0 <= value <= 1:
        raise ValueError(f"{key} must be between 0 and 1")
    return value


class RateLimiter:
    """Sliding-window and in-flight limits, scaled by the `--rate-limits` mode."""

    def __init__(self, limits: list[RateLimit], mode: RateLimitMode) -> None:
        self.limits = limits
        self.mode = mode
        self._windows: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._in_flight: Counter[tuple[str, str]] = Counter()

    def window(self, limit: RateLimit) -> float:
        # scaled:K makes the vendor's budget K times faster (same count, shorter window).
        return limit.window_s / self.mode if isinstance(self.mode, float) else limit.window_s

    def _matching(self, request: Request) -> list[tuple[RateLimit, tuple[str, str]]]:
        if self.mode == "off":
            return []
        found = []
        for limit in self.limits:
            if limit.applies and not limit.applies(request.method, request.url.path):
                continue
            key = limit.key(request) if limit.key else ""
            found.append((limit, (limit.name, key)))
        return found

    def admit(self, request: Request) -> tuple[bool, RateLimit | None, list[tuple[str, str]]]:
        """Admit the request or name the limit it breaks; returns in-flight keys to release."""
        now = time.monotonic()
        matching = self._matching(request)
        for limit, key in matching:
            if limit.concurrent:
                if self._in_flight[key] >= limit.limit:
                    return False, limit, []
                continue
            window = self._windows[key]
            horizon = now - self.window(limit)
            while window and window[0] <= horizon:
                window.popleft()
            if len(window) >= limit.limit:
                return False, limit, []
        held = []
        for limit, key in matching:
            if limit.concurrent:
                self._in_flight[key] += 1
                held.append(key)
            else:
                self._windows[key].append(now)
        return True, None, held

    def release(self, held: list[tuple[str, str]]) -> None:
        for key in held:
            self._in_flight[key] -= 1


class DroppedConnection(Exception):
    """Raised after a truncated response start so the server cuts the connection."""


class SystemMiddleware:
    """Wraps one system's app with counting, faults and rate limits."""

    def __init__(
        self,
        app: ASGIApp,
        system: SandboxSystem,
        calls: CallCounter,
        faults: FaultHolder,
        limiter: RateLimiter,
    ) -> None:
        self.app = app
        self.system = system
        self.calls = calls
        self.faults = faults
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        self.calls.record(
            self.system.name, self.system.endpoint_name(request.method, scope["path"])
        )
        plan = self.faults.plan
        if self.system.name in plan.systems:
            handled = await self._inject(plan, scope, receive, send)
            if handled:
                return
        admitted, broken, held = self.limiter.admit(request)
        if not admitted:
            assert broken is not None
            retry_after = broken.retry_after_s or max(1, round(self.limiter.window(broken)))
            await self.system.error_response("rate_limited", retry_after)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.limiter.release(held)

    async def _inject(self, plan: FaultPlan, scope: Scope, receive: Receive, send: Send) -> bool:
        if plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        roll = plan.rng.random()
        if roll < plan.error_rate_5xx:
            await self.system.error_response("server_error", None)(scope, receive, send)
            return True
        roll -= plan.error_rate_5xx
        if roll < plan.rate_429:
            await self.system.error_response("rate_limited", 1)(scope, receive, send)
            return True
        roll -= plan.rate_429
        if roll < plan.drop_rate:
            phase = plan.drop_phase
            if phase == "random":
                phase = plan.rng.choice(["before", "after"])
            if phase == "after":
                # The vendor did the work; only the answer is lost. This is the case
                # that tests exactly-once behaviour.
                await self.app(scope, receive, _swallow)
            _drop(send)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"1000")],
                }
            )
            raise DroppedConnection("sandbox fault: connection dropped")
        return False


def _drop(send: Send) -> None:
    """Cut the TCP connection without an answer, as a failing network would.

    uvicorn's `send` is a bound method of the request cycle, which holds the transport;
    if that ever changes, the caller's fallback is a truncated response (the client
    sees an incomplete read instead of a reset).
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.abort()


async def _swallow(message: Message) -> None:
    return None


@dataclass
class FaultHolder:
    """The current fault plan, replaced atomically by the admin API."""

    plan: FaultPlan = field(default_factory=FaultPlan)
