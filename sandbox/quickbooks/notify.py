"""Intuit webhook notifications, signed with the app's verifier token.

Each API request that changed Customer, Invoice, Payment, CreditMemo or Item records
sends one notification listing every change (a batch becomes one notification, as
Intuit aggregates). Two shapes, chosen by `POST /_sandbox/quickbooks/webhook_format`:

- legacy: {"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [...]}}]}
- cloudevents: a top-level JSON array of CloudEvents 1.0 objects, one per change,
  `type` like "qbo.payment.created.v1" (the format Intuit is migrating everyone to).

`intuit-signature` is base64(HMAC-SHA256(verifier token, exact body bytes)) for both.

Webhooks belong to the Intuit *app*: one endpoint URL and one verifier token for every
company connected to it, and a notification may carry several realms, one
`eventNotifications` entry each (https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks:
"Webhooks apply to all QuickBooks Online companies connected to your app"). Intuit
aggregates changes over a short window; here a notification goes out per request, unless
a test holds them (`POST /_sandbox/quickbooks/notifications {"hold": true}`) and then
releases one batch carrying every realm that changed meanwhile.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any, Literal

from billsync.sandbox.core import WebhookSink
from billsync.sandbox.quickbooks.store import ChangeEvent, Realm
from billsync.sandbox.quickbooks.timefmt import webhook_time

Format = Literal["legacy", "cloudevents"]
VERBS = {
    "Create": "created",
    "Update": "updated",
    "Delete": "deleted",
    "Void": "voided",
    "Emailed": "emailed",
}


def signature(verifier_token: str, body: bytes) -> str:
    digest = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Notifier:
    def __init__(
        self, sink: WebhookSink, verifier_token: str, app_id: str, route: str = "quickbooks"
    ) -> None:
        self.sink = sink
        self.verifier_token = verifier_token
        self.app_id = app_id
        self.route = route  # the app's endpoint: <billsync>/webhooks/<route>
        self.format: Format = "legacy"
        self.held = False
        self._pending: dict[str, list[ChangeEvent]] = {}

    def sign(self, body: bytes) -> dict[str, str]:
        return {"intuit-signature": signature(self.verifier_token, body)}

    def flush(self, realm: Realm) -> None:
        events, realm.events = realm.events, []
        if events:
            self._pending.setdefault(realm.realm_id, []).extend(events)
        if not self.held:
            self.release()

    def hold(self, held: bool) -> None:
        self.held = held
        if not held:
            self.release()

    def discard(self) -> None:
        """Sandbox reset: changes not yet sent are forgotten with the records."""
        self._pending.clear()
        self.held = False

    def release(self) -> None:
        """Send what is pending as one notification, realms in the order they changed."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        payload: Any
        if self.format == "cloudevents":
            payload = [
                self._cloud_event(realm_id, e) for realm_id, es in pending.items() for e in es
            ]
        else:
            payload = {
                "eventNotifications": [_legacy(realm_id, es) for realm_id, es in pending.items()]
            }
        body = json.dumps(payload, separators=(",", ":")).encode()
        # Intuit holds later notifications behind one that is not acknowledged.
        self.sink.deliver(self.route, body, self.sign, ordered=True)

    def _cloud_event(self, realm_id: str, event: ChangeEvent) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"intuit.{self.app_id}",
            "type": f"qbo.{event.entity.lower()}.{VERBS[event.operation]}.v1",
            "datacontenttype": "application/json",
            "time": webhook_time(event.at),
            "intuitentityid": event.id,
            "intuitaccountid": realm_id,
            "data": {},
        }


def _legacy(realm_id: str, events: list[ChangeEvent]) -> dict[str, Any]:
    entities = [
        {
            "name": e.entity,
            "id": e.id,
            "operation": e.operation,
            "lastUpdated": webhook_time(e.at),
        }
        for e in events
    ]
    return {"realmId": realm_id, "dataChangeEvent": {"entities": entities}}
