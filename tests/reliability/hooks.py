"""Webhook traffic for the abuse suite: genuine events taken from the sandbox (Stripe's
own event objects, Intuit notifications naming real payments), signed with the
endpoint secrets, and raw-socket clients for what `requests` will not send (oversized,
trickled and doubled requests)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import sqlalchemy as sa

from billsync.sandbox.launcher import SandboxHandle
from tests.reliability.world import Server
from tests.server.test_webhook_receiver import intuit_headers, stripe_headers


@dataclass
class Endpoint:
    """A live `billsync serve` with the secrets its providers sign with."""

    server: Server
    handle: SandboxHandle
    ledger_url: str
    stripe_secret: str
    intuit_token: str
    realm: str

    def url(self, provider: str) -> str:
        return f"{self.server.base_url}/webhooks/{provider}"

    def post(self, provider: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(self.url(provider), data=body, headers=headers, timeout=30)

    def signed_stripe(self, body: bytes, *, at: float | None = None) -> dict[str, str]:
        return stripe_headers(body, self.stripe_secret, at)

    def signed_intuit(self, body: bytes) -> dict[str, str]:
        return intuit_headers(body, self.intuit_token)

    # --- the ledger, read directly ---------------------------------------------------

    def query(self, sql: str, **params: Any) -> list[Any]:
        engine = sa.create_engine(self.ledger_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params).all())
        finally:
            engine.dispose()

    def inbox_count(self) -> int:
        return int(self.query("SELECT count(*) FROM inbox")[0][0])

    def inbox_status(self, provider: str, event_id: str) -> list[str]:
        rows = self.query(
            "SELECT status FROM inbox WHERE provider = :p AND event_id = :e", p=provider, e=event_id
        )
        return [r[0] for r in rows]

    def payments_of(self, target: str, invoice: str) -> list[tuple[str, str, str]]:
        rows = self.query(
            "SELECT provider_payment_id, kind, amount FROM payments "
            "WHERE invoice_target = :t AND invoice_external_id = :i ORDER BY id",
            t=target,
            i=invoice,
        )
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def invoice_row(self, target: str, invoice: str) -> dict[str, Any] | None:
        engine = sa.create_engine(self.ledger_url)
        try:
            with engine.connect() as conn:
                row = (
                    conn.execute(
                        sa.text("SELECT * FROM invoices WHERE target = :t AND external_id = :i"),
                        {"t": target, "i": invoice},
                    )
                    .mappings()
                    .first()
                )
            return dict(row) if row else None
        finally:
            engine.dispose()

    def wait_processed(self, provider: str, event_ids: list[str], timeout: float = 60) -> None:
        """Until the worker has finished each event (done or failed, not pending)."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = [s for e in event_ids for s in self.inbox_status(provider, e)]
            if len(statuses) >= len(event_ids) and all(s in ("done", "failed") for s in statuses):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"events not processed in time: {event_ids} {statuses}")
            time.sleep(0.1)

    # --- genuine events from the sandbox -------------------------------------------

    def stripe_event_ids(self) -> set[str]:
        return {e["id"] for e in self._all_stripe_events()}

    def stripe_events(self, types: tuple[str, ...], *, after: set[str]) -> list[dict[str, Any]]:
        """The sandbox's events of these types not in ``after`` (oldest first), exactly
        as Stripe renders them."""
        found = [
            e for e in self._all_stripe_events() if e["type"] in types and e["id"] not in after
        ]
        return sorted(found, key=lambda e: (e["created"], e["id"]))

    def _all_stripe_events(self) -> list[dict[str, Any]]:
        info = self.handle.info
        response = requests.get(
            f"{info['stripe_url']}/v1/events",
            params={"limit": 100},
            headers={"Authorization": f"Bearer {info['stripe_api_key']}"},
            timeout=30,
        )
        response.raise_for_status()
        return list(response.json()["data"])


def stripe_body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def intuit_legacy(realm: str, entity: str, entity_id: str, operation: str = "Create") -> bytes:
    change = {
        "name": entity,
        "id": entity_id,
        "operation": operation,
        "lastUpdated": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
    }
    notification = {"realmId": realm, "dataChangeEvent": {"entities": [change]}}
    return json.dumps({"eventNotifications": [notification]}).encode()


def intuit_cloud(realm: str, event_id: str, entity_id: str, kind: str) -> bytes:
    return json.dumps(
        [
            {
                "specversion": "1.0",
                "id": event_id,
                "source": "intuit.reliability",
                "type": kind,
                "datacontenttype": "application/json",
                "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "intuitentityid": entity_id,
                "intuitaccountid": realm,
                "data": {},
            }
        ]
    ).encode()


# --- raw sockets ---------------------------------------------------------------------


def raw_request(base_url: str, head: bytes, body_parts: list[bytes], pause: float = 0.0) -> bytes:
    """Send a hand-made request (head, then body parts with a pause between them) and
    return whatever the server answered first (b"" if it closed without a word)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(head)
        conn.settimeout(0.01)
        answer = b""
        for part in body_parts:
            try:
                conn.sendall(part)
            except OSError:
                break  # the server closed: it answered or gave up on us
            try:
                answer = conn.recv(4096)
            except (TimeoutError, BlockingIOError):
                answer = b""
            if answer:
                break
            if pause:
                time.sleep(pause)
        conn.settimeout(30)
        return _rest_of_answer(conn, answer)


def _rest_of_answer(conn: socket.socket, answer: bytes) -> bytes:
    """Read until the head and the Content-Length of body are in (or the peer closes)."""
    while True:
        head_end = answer.find(b"\r\n\r\n")
        if head_end >= 0:
            length = 0
            for line in answer[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(answer) >= head_end + 4 + length:
                return answer
        try:
            more = conn.recv(65536)
        except OSError:
            return answer
        if not more:
            return answer
        answer += more


def status_of(answer: bytes) -> int | None:
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def head(provider: str, headers: list[tuple[str, str]]) -> bytes:
    """A request head; a list, so a header may appear twice."""
    lines = [f"POST /webhooks/{provider} HTTP/1.1", "Host: billsync"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started
