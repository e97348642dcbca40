"""Intuit webhooks: ``intuit-signature`` checked on the raw bytes, both payload shapes.

The signature is base64(HMAC-SHA256(verifier token, body bytes)), compared in constant
time against each configured verifier token (several during a rotation). Only then is
the body parsed. Two shapes are accepted (api-facts §2.10):

- legacy: ``{"eventNotifications": [{"realmId", "dataChangeEvent": {"entities":
  [{"name", "id", "operation", "lastUpdated", "deletedId"?}]}}]}`` — no event id, so
  one is derived from realm, entity, id, operation and lastUpdated (the same change
  delivered twice gets the same id);
- CloudEvents: a top-level array of ``{"specversion": "1.0", "id", "type":
  "qbo.payment.created.v1", "time", "intuitentityid", "intuitaccountid", ...}``.

Each change becomes one `WebhookNotification` whose ``event_type`` uses the CloudEvents
vocabulary for both shapes (``qbo.payment.created.v1``) and whose ``payload`` is the
change itself as JSON (`notification_facts` reads it back).

One Intuit app has one webhook URL for every company connected to it, and a delivery
may mix companies (api-facts §2.10). Notifications for a company this connection does
not serve (another realm) are dropped and logged, never refused: Intuit retries a
refused delivery for hours and holds the company's later events behind it, so a refusal
would stall our own events too. A delivery with nothing for our company is acknowledged
with nothing stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.core.canonical import WebhookNotification
from billsync.core.logs import get_logger
from billsync.core.protocols import WebhookRejected, WebhookRejectReason

__all__ = ["NotificationFacts", "QboWebhookVerifier", "notification_facts"]

log = get_logger("billsync.quickbooks.webhooks")
Clock = Callable[[], datetime]
PROVIDER = "quickbooks"
HEADER = "intuit-signature"
VERBS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided",
         "Emailed": "emailed", "Merge": "merged"}  # fmt: skip
OPERATIONS = {verb: operation for operation, verb in VERBS.items()}
ENTITIES = {name.lower(): name for name in (
    "Invoice", "Payment", "CreditMemo", "Customer", "Item", "Vendor", "Employee", "Estimate",
    "SalesReceipt", "RefundReceipt", "Bill", "BillPayment", "Account", "Term", "TaxCode",
)}  # fmt: skip


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NotificationFacts:
    realm_id: str
    entity: str
    entity_id: str
    operation: str  # Create | Update | Delete | Void | Emailed | Merge
    occurred_at: datetime


def _reject(reason: WebhookRejectReason, message: str) -> WebhookRejected:
    return WebhookRejected(reason, message)


class QboWebhookVerifier:
    """Implements ``billsync.core.protocols.WebhookVerifier`` (and
    ``DescribesWebhookRequests``) for Intuit.

    Intuit sends the notifications of every company connected to one app to the app's
    single webhook URL (one endpoint per app:
    https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks). So the
    verifier of connection ``name`` keeps its own realm's notifications and hands each
    peer connection's realm to that peer (``peers``: realm id → connection name); the
    server stores them under the peer. The signature is the receiving app's token over
    the whole body, so routing by realm after it is checked is safe whichever token a
    peer's own section holds.
    """

    headers = (HEADER,)
    media_types = frozenset({"application/json"})

    def __init__(
        self,
        verifier_tokens: Sequence[str],
        realm_id: str | None,
        *,
        clock: Clock = _utcnow,
        name: str = PROVIDER,
        peers: Mapping[str, str] | None = None,
    ) -> None:
        tokens = [t for t in verifier_tokens if t]
        if not tokens:
            # Refusing to start beats accepting unsigned webhooks by accident.
            raise ValueError("set quickbooks.verifier_token to receive Intuit webhooks")
        self._keys = [t.encode("utf-8") for t in tokens]
        self._realm_id = realm_id
        self._clock = clock
        self._name = name
        self._owners = {**(peers or {}), **({realm_id: name} if realm_id else {})}

    def __repr__(self) -> str:
        return f"QboWebhookVerifier(realm_id={self._realm_id!r}, tokens={len(self._keys)})"

    @property
    def provider(self) -> str:
        return self._name

    @classmethod
    def from_settings(
        cls,
        settings: QuickBooksSettings,
        *,
        name: str = PROVIDER,
        peers: Mapping[str, QuickBooksSettings] | None = None,
    ) -> QboWebhookVerifier:
        """The verifier of connection ``name``; ``peers`` are the other QuickBooks
        connections by name (their realms are routed to them)."""
        token = settings.verifier_token.get_secret_value() if settings.verifier_token else ""
        realms = {s.realm_id: peer for peer, s in (peers or {}).items() if s.realm_id}
        return cls([token], settings.realm_id, name=name, peers=realms)

    def _owner(self, realm_id: str) -> str | None:
        if self._realm_id is None:
            return self._name  # no realm configured: every notification is ours
        return self._owners.get(realm_id)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> list[WebhookNotification]:
        self._check_signature(body, headers)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: not ours
            raise _reject(WebhookRejectReason.MALFORMED, "the body is not JSON") from None
        received = self._clock()
        try:
            changes = _cloud_events(payload) if isinstance(payload, list) else _legacy(payload)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise _reject(
                WebhookRejectReason.MALFORMED, "the body is not an Intuit notification"
            ) from None
        served = [(self._owner(c[0].realm_id), c) for c in changes]
        if any(owner is None for owner, _ in served):
            # Acknowledged, never refused: Intuit retries a refused delivery (10 s, 20 s,
            # 30 s, 5 min, … then every 6 h) and holds later events until it is acknowledged.
            # https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks/best-practices
            others = sorted({c[0].realm_id for owner, c in served if owner is None})
            log.warning(
                "quickbooks.webhook_other_realm",
                connection=self._name,
                dropped=sum(owner is None for owner, _ in served),
                kept=sum(owner is not None for owner, _ in served),
                realms=others[:10],
                reason="companies connected to the same Intuit app that no QuickBooks "
                "connection's realm_id names; their events are acknowledged and not synced",
            )
        return [
            WebhookNotification(
                provider=owner,
                event_id=event_id,
                event_type=_event_type(facts),
                payload=json.dumps(raw, sort_keys=True, separators=(",", ":")),
                received_at=received,
            )
            for owner, (facts, event_id, raw) in served
            if owner is not None
        ]

    def _check_signature(self, body: bytes, headers: Mapping[str, str]) -> None:
        given = next((v for k, v in headers.items() if k.lower() == HEADER), None)
        if not given:
            raise _reject(WebhookRejectReason.MISSING_SIGNATURE, f"no {HEADER} header")
        try:
            signature = base64.b64decode(given.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise _reject(WebhookRejectReason.BAD_SIGNATURE, f"{HEADER} is not base64") from None
        matched = False
        for key in self._keys:
            expected = hmac.new(key, body, hashlib.sha256).digest()
            matched |= hmac.compare_digest(expected, signature)
        if not matched:
            raise _reject(WebhookRejectReason.BAD_SIGNATURE, f"{HEADER} does not match the body")


Change = tuple[NotificationFacts, str, dict[str, Any]]


def _legacy(payload: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    for notification in payload["eventNotifications"]:
        realm = str(notification["realmId"])
        for entity in notification["dataChangeEvent"]["entities"]:
            raw = {"format": "legacy", "realmId": realm, **entity}
            facts = _facts_from_legacy(raw)
            seed = "|".join(
                (realm, facts.entity, facts.entity_id, facts.operation, str(entity["lastUpdated"]))
            )
            event_id = "qbo-legacy-" + hashlib.sha256(seed.encode()).hexdigest()[:32]
            changes.append((facts, event_id, raw))
    return changes


def _cloud_events(payload: list[Any]) -> list[Change]:
    changes: list[Change] = []
    for event in payload:
        raw = {"format": "cloudevents", **event}
        event_id = str(event["id"])
        if not event_id.strip():
            raise ValueError("CloudEvent without id")
        changes.append((_facts_from_cloud(raw), event_id, raw))
    return changes


def _event_type(facts: NotificationFacts) -> str:
    verb = VERBS.get(facts.operation, facts.operation.lower())
    return f"qbo.{facts.entity.lower()}.{verb}.v1"


def _entity(name: str) -> str:
    return ENTITIES.get(name.lower(), name[:1].upper() + name[1:])


def _parse(moment: Any) -> datetime:
    parsed = datetime.fromisoformat(str(moment))
    if parsed.tzinfo is None:
        raise ValueError("timestamp without zone")
    return parsed.astimezone(UTC)


def _facts_from_legacy(raw: Mapping[str, Any]) -> NotificationFacts:
    entity_id = str(raw.get("id") or raw.get("deletedId") or "")
    if not entity_id:
        raise ValueError("entity without id")
    return NotificationFacts(
        realm_id=str(raw["realmId"]),
        entity=_entity(str(raw["name"])),
        entity_id=entity_id,
        operation=str(raw["operation"]),
        occurred_at=_parse(raw["lastUpdated"]),
    )


def _facts_from_cloud(raw: Mapping[str, Any]) -> NotificationFacts:
    prefix, entity, verb, *_ = str(raw["type"]).split(".")
    if prefix != "qbo" or not raw.get("intuitentityid"):
        raise ValueError("not a QuickBooks event")
    return NotificationFacts(
        realm_id=str(raw["intuitaccountid"]),
        entity=_entity(entity),
        entity_id=str(raw["intuitentityid"]),
        operation=OPERATIONS.get(verb, verb.capitalize()),
        occurred_at=_parse(raw["time"]),
    )


def notification_facts(notification: WebhookNotification) -> NotificationFacts:
    """What a stored notification names (raises ValueError for a foreign payload)."""
    raw = json.loads(notification.payload)
    if raw.get("format") == "cloudevents":
        return _facts_from_cloud(raw)
    return _facts_from_legacy(raw)
