"""The outbox keeps a queue per route: one company's failing receiver holds back only
its own ordered (Intuit) deliveries, never another company's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest

from billsync.sandbox.webhooks import WebhookOutbox


@pytest.fixture
def receiver_url() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            # The qbo_us receiver is down; every other route acknowledges.
            self.send_response(500 if self.path == "/webhooks/qbo_us" else 200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_failing_route_holds_back_only_its_own_ordered_deliveries(receiver_url: str) -> None:
    async def scenario() -> list[tuple[str, int, bool]]:
        # A quick retry, then a wait far longer than the test: the first stays unacknowledged.
        outbox = WebhookOutbox(receiver_url, retry_schedule_s=(0.05, 3600.0))
        outbox.start()
        unsigned = lambda body: {}  # noqa: E731
        outbox.deliver("qbo_us", b'{"n":1}', unsigned, ordered=True)
        outbox.deliver("qbo_us", b'{"n":2}', unsigned, ordered=True)
        outbox.deliver("qbo_uk", b'{"n":3}', unsigned, ordered=True)
        first, _, other = outbox.log
        for _ in range(1000):  # at most ~10 s, then the assertions say what happened
            if first.attempts >= 2 and other.delivered:
                break
            await asyncio.sleep(0.01)
        await outbox.stop()
        return [(d.provider, d.attempts, d.delivered) for d in outbox.log]

    first, second, other = asyncio.run(scenario())

    assert first == ("qbo_us", 2, False)  # tried and retried, never acknowledged
    assert second == ("qbo_us", 0, False)  # waits behind it, as Intuit's do
    assert other == ("qbo_uk", 1, True)
