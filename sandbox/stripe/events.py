"""Events: every state change is an Event, listed by `/v1/events` and sent as a webhook.

An event's body is rendered once, when it happens, so `data.object` is the object as it
was then (as Stripe's are). Webhooks carry the same JSON, signed per attempt with the
sandbox clock: `Stripe-Signature: t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>`,
which `stripe.Webhook.construct_event` verifies. Only the last 30 days are listable
(api-facts §3.8).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from billsync.sandbox.core import Clock, WebhookSink
from billsync.sandbox.stripe.errors import StripeError, invalid, no_such
from billsync.sandbox.stripe.listing import page
from billsync.sandbox.stripe.params import Params, in_range
from billsync.sandbox.stripe.store import Obj, Origin
from billsync.sandbox.stripe.wire import dumps, new_id

API_VERSION = "2026-10-28.endive"
RETENTION_S = 30 * 86400
MAX_TYPES = 20
# Embedded lists change shape as objects grow; previous_attributes carries scalars and
# small hashes only, which is what integrations read from it.
_NOT_DIFFED = frozenset({"lines", "payments", "refunds"})


@dataclass(frozen=True)
class StoredEvent:
    id: str
    type: str
    created: int
    text: str


def changed(before: Obj, after: Obj) -> dict[str, Any]:
    """`data.previous_attributes`: the old values of the top-level fields that changed."""
    return {
        key: value
        for key, value in before.items()
        if key not in _NOT_DIFFED and after.get(key) != value
    }


class EventLog:
    def __init__(self, clock: Clock, sink: WebhookSink, secret: str, route: str = "stripe") -> None:
        self.clock = clock
        self.sink = sink
        self.secret = secret
        self.route = route  # the account's webhook endpoint: <billsync>/webhooks/<route>
        self.ids: list[str] = []
        self.by_id: dict[str, StoredEvent] = {}

    def clear(self) -> None:
        self.ids.clear()
        self.by_id.clear()

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def emit(
        self, type_: str, obj: Obj, origin: Origin, previous: dict[str, Any] | None = None
    ) -> StoredEvent:
        data: dict[str, Any] = {"object": obj}
        if previous:
            data["previous_attributes"] = previous
        event: dict[str, Any] = {
            "id": new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": origin.id, "idempotency_key": origin.idempotency_key},
            "type": type_,
        }
        stored = StoredEvent(event["id"], type_, event["created"], dumps(event))
        self.ids.append(stored.id)
        self.by_id[stored.id] = stored
        self.sink.deliver(self.route, stored.text.encode(), self.sign)
        return stored

    def sign(self, body: bytes) -> dict[str, str]:
        """Called for every delivery attempt: a fresh timestamp each time, like Stripe."""
        timestamp = self.now()
        mac = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        return {"Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}"}

    def retrieve(self, event_id: str) -> str:
        stored = self.by_id.get(event_id)
        if stored is None or stored.created < self.now() - RETENTION_S:
            raise no_such("event", event_id)
        return stored.text

    def list(self, params: Params) -> str:
        params.allow(
            (
                "created",
                "delivery_success",
                "ending_before",
                "limit",
                "starting_after",
                "type",
                "types",
            )
        )
        if params.has("type") and params.has("types"):
            raise StripeError(
                "You may only specify one of these parameters: type, types.",
                param="types",
                saved=False,
            )
        single = params.str("type")
        patterns = [single] if single else params.strings("types", max_items=MAX_TYPES)
        if any(p == "" for p in patterns):
            raise invalid("types", "Invalid event type: ''")
        exact = {p for p in patterns if not p.endswith("*")}
        prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))
        created = params.range("created")
        params.bool("delivery_success", True)  # accepted; see README: not filtered
        oldest = self.now() - RETENTION_S
        by_id = self.by_id

        def match(event_id: str) -> bool:
            event = by_id[event_id]
            if event.created < oldest or not in_range(event.created, created):
                return False
            if not patterns:
                return True
            # `invoice.*` style wildcards, as Stripe's events list allows.
            return event.type in exact or event.type.startswith(prefixes)

        ids, has_more = page(list(reversed(self.ids)), params, "event", match)
        body = ",".join(by_id[i].text for i in ids)
        more = "true" if has_more else "false"
        return f'{{"object":"list","data":[{body}],"has_more":{more},"url":"/v1/events"}}'
