"""Shared set-up for the Stripe sandbox tests: a running sandbox with the real Stripe
system, an unmodified stripe-python 16 `StripeClient` pointed at it, the admin API and
a local webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import stripe

from tests.sandbox.harness import LoopThread, start_in_thread

SYSTEM = "billsync.sandbox.stripe.system:StripeSandbox"


@dataclass
class Receiver:
    """A webhook endpoint on localhost that records what the sandbox sends."""

    server: ThreadingHTTPServer
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    routed: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    """(request path, headers, body) of each delivery."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in list(self.received)]

    def wait_for(
        self, event_type: str, count: int = 1, timeout: float = 10
    ) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [(h, b) for h, b in list(self.received) if json.loads(b)["type"] == event_type]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(
            f"no {event_type} webhook within {timeout}s; got {[e['type'] for e in self.events()]}"
        )


@contextmanager
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = dict(self.headers.items())
            holder[0].routed.append((self.path, headers, body))
            holder[0].received.append((headers, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(server))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class StripeEnv:
    runner: LoopThread

    @property
    def info(self) -> dict[str, Any]:
        return self.runner.info

    @property
    def url(self) -> str:
        return str(self.info["stripe_url"])

    @property
    def key(self) -> str:
        return str(self.info["stripe_api_key"])

    @property
    def secret(self) -> str:
        return str(self.info["stripe_webhook_secret"])

    def client(self, **kwargs: Any) -> stripe.StripeClient:
        return stripe.StripeClient(self.key, base_addresses={"api": self.url}, **kwargs)

    def admin(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = requests.request(
            method, f"{self.info['admin_url']}/_sandbox/{path}", json=body, timeout=10
        )
        assert response.status_code == expect, response.text
        return response.json()

    def advance(self, seconds: int) -> None:
        self.admin("POST", "clock", {"advance_s": seconds})

    def calls(self) -> dict[str, int]:
        return dict(self.admin("GET", "calls")["systems"].get("stripe", {}))

    def state(self) -> dict[str, Any]:
        return dict(self.admin("GET", "state")["stripe"])

    def raw(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)


@contextmanager
def stripe_sandbox(tmp_path: Path, **options: Any) -> Iterator[StripeEnv]:
    options.setdefault("system_options", {"search_delay_s": 5.0})
    with start_in_thread(tmp_path, systems={"stripe": SYSTEM}, **options) as runner:
        yield StripeEnv(runner)


def invoice_for(
    env: StripeEnv,
    client: stripe.StripeClient,
    amount: int = 10_000,
    currency: str = "usd",
    **extra: Any,
) -> stripe.Invoice:
    """A finalized send_invoice invoice with one line of `amount` minor units."""
    customer = client.v1.customers.create(params={"email": "payer@example.com"})
    invoice = client.v1.invoices.create(
        params={
            "customer": customer.id,
            "currency": currency,
            "collection_method": "send_invoice",
            "days_until_due": 30,
            **extra,
        }
    )
    client.v1.invoices.add_lines(
        invoice.id, params={"lines": [{"amount": amount, "description": "Services"}]}
    )
    return client.v1.invoices.finalize_invoice(invoice.id)
