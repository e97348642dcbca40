"""The header deadline and the connection bound of `billsync serve`'s protocol, on a real
uvicorn on 127.0.0.1 with small numbers (the slowloris itself: tests/reliability)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from billsync.sync.server.protocol import FD_RESERVE, GuardedH11Protocol, connection_limit

TIMEOUT_S = 0.5
PARTIAL = b"GET /ping HTTP/1.1\r\nHost: t\r\n"
FULL = b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"


@contextmanager
def guarded_server(max_connections: int = 1000, timeout_s: float = TIMEOUT_S) -> Iterator[int]:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, bool]:
        return {"ok": True}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    protocol = GuardedH11Protocol.configured(timeout_s, max_connections)
    config = uvicorn.Config(app, log_config=None, access_log=False, http=protocol)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def _connect(port: int, data: bytes) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.sendall(data)
    return conn


def _closed_within(conn: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``conn`` (EOF or reset), None if it stayed open."""
    started = time.monotonic()
    conn.settimeout(seconds)
    try:
        while data := conn.recv(4096):
            if b"HTTP/1.1" in data and b"\r\n\r\n" in data:
                continue  # a response (the keep-alive case reads one first)
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_unfinished_headers_are_cut_at_the_deadline_even_when_dripped() -> None:
    with guarded_server() as port:
        silent, dripping = _connect(port, b""), _connect(port, PARTIAL)
        for _ in range(3):
            time.sleep(TIMEOUT_S / 3)
            try:
                dripping.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
        assert (_closed_within(silent, 2) or 99) < 1.0
        assert _closed_within(dripping, 2) is not None
        prompt = _connect(port, FULL)
        assert b"200 OK" in prompt.recv(4096)
        # Kept alive: the next request's headers get the same deadline.
        prompt.sendall(PARTIAL)
        assert _closed_within(prompt, 2) is not None


def test_at_the_bound_the_oldest_waiting_connection_makes_room() -> None:
    with guarded_server(max_connections=20, timeout_s=30) as port:
        held = [_connect(port, PARTIAL) for _ in range(20)]
        time.sleep(0.1)
        fresh = _connect(port, FULL)
        assert b"200 OK" in fresh.recv(4096)  # answered at once, not refused
        assert _closed_within(held[0], 1) is not None  # the oldest went
        assert _closed_within(held[-1], 0.2) is None  # the newest stayed
        for conn in (*held, fresh):
            conn.close()


def test_the_bound_stays_below_the_descriptor_limit() -> None:
    assert connection_limit(1000, 20000) == 1000
    assert connection_limit(1000, 1024) == 1024 - FD_RESERVE
    assert connection_limit(1000, 100) == 16
