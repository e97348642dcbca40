"""uvicorn's h11 protocol with a deadline for request headers and a bound on connections.

A slowloris client opens many connections and never finishes their headers. uvicorn's
h11 protocol has no header timeout (``timeout_keep_alive`` only covers the idle time
between requests), so each such connection is held for as long as the client likes; at
the process's file-descriptor limit (1,024 in many containers) the server can accept
nothing more and /healthz and the webhook endpoints refuse everyone. Two guards:

- **Header deadline**: a connection gets ``header_timeout_s`` from its first byte (or
  from being accepted) to complete a request's headers, then it is closed. Dripping a
  header line now and then does not extend it.
- **Connection bound**: at ``max_connections`` open connections, a new one closes the
  oldest connection that is waiting for headers (idle keep-alive included) — never
  one with a request in flight — and is refused only when every connection is busy.
  `connection_limit` keeps the bound below the descriptor limit, so the process always
  has descriptors left to accept with. A client that sends its headers at once (a
  health check, a webhook delivery) is past the guard within milliseconds; a held-open
  connection is what goes first.

uvicorn's own ``limit_concurrency`` is not used: it counts held-open connections too and
answers 503 to everyone once they reach it, which is the slowloris's aim.

The class reads its two numbers from class attributes: `serve` passes a `configured`
subclass to ``uvicorn.Config(http=...)``; with ``--workers N`` each worker's factory
calls `configure` before the first connection (uvicorn imports the class by name).
"""

from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from billsync.core.logs import get_logger

log = get_logger("billsync.server")

HEADER_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 1000
FD_RESERVE = 128
"""Descriptors kept back for the ledger, log files and the vendor calls of the worker."""


def raise_fd_limit() -> int:
    """Raise this process's soft descriptor limit to the hard one; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_limit(wanted: int, fd_limit: int) -> int:
    """``wanted``, lowered to stay ``FD_RESERVE`` below the descriptor limit."""
    return max(16, min(wanted, fd_limit - FD_RESERVE))


class GuardedH11Protocol(H11Protocol):
    header_timeout_s: float = HEADER_TIMEOUT_S
    max_connections: int = MAX_CONNECTIONS

    @classmethod
    def configured(cls, header_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
        """A subclass with these numbers (for one server in this process)."""
        attributes = {"header_timeout_s": header_timeout_s, "max_connections": max_connections}
        return type("GuardedH11Protocol", (cls,), attributes)

    @classmethod
    def configure(cls, header_timeout_s: float, max_connections: int) -> None:
        """Set the numbers on this class (a worker process of ``--workers N``)."""
        cls.header_timeout_s, cls.max_connections = header_timeout_s, max_connections

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._opened = time.monotonic()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections and not self._make_room():
            log.warning("server.connection_refused", open=len(self.connections))
            transport.close()
            return
        super().connection_made(transport)
        self._start_deadline()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_headers():
            self._start_deadline()  # a keep-alive connection's next request begins
        super().data_received(data)
        if not self._waiting_for_headers():
            self._stop_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        if self.transport is None:  # refused in connection_made: never counted
            return
        super().connection_lost(exc)

    def _waiting_for_headers(self) -> bool:
        """No request in flight: its headers have not all arrived (or none began)."""
        idle = self.conn.their_state is h11.IDLE
        return idle and (self.cycle is None or self.cycle.response_complete)

    def _start_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._expired)

    def _stop_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expired(self) -> None:
        self._header_deadline = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            log.info("server.header_timeout", client=self.client[0] if self.client else None)
            self.transport.close()

    def _make_room(self) -> bool:
        """Close the oldest connection waiting for headers; False if all are busy."""
        waiting = [
            c
            for c in self.connections
            if isinstance(c, GuardedH11Protocol)
            and c._waiting_for_headers()
            and not c.transport.is_closing()
        ]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c._opened)
        oldest._stop_deadline()
        oldest.transport.close()
        oldest.connections.discard(oldest)  # counted out now, not when the loop gets to it
        return True
