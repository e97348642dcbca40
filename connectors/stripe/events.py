"""Stripe events as payment facts: which events move money, and how much, on which invoice.

Each money fact becomes one `PaymentEvent` whose ``provider_payment_id`` names the fact
itself, so the ledger counts it once however many events report it (an invoice payment
arrives as ``invoice_payment.paid`` *and* again in ``invoice.paid``):

| event | kind | provider_payment_id | amount |
|---|---|---|---|
| invoice_payment.paid | paid / partially_paid | inpay_… | amount paid |
| invoice.paid, invoice.payment_succeeded | paid / partially_paid | each paid inpay_… | each |
| (paid outside Stripe) | paid / partially_paid | ``in_…:paid_out_of_band`` | the rest |
| invoice.payment_failed | payment_failed | ``in_…:payment_failed:<attempt>`` | amount remaining |
| invoice.voided | voided | ``in_…:voided`` | amount remaining |
| invoice.marked_uncollectible | uncollectible | ``in_…:uncollectible`` | amount remaining |
| charge.refunded, charge.refund.updated | refunded | each succeeded re_… | refund |
| charge.dispute.created | disputed | dp_… | withdrawn (0 for an inquiry) |
| charge.dispute.closed | dispute_closed | ``dp_…:closed`` | reinstated (won) or 0 |
| credit_note.created | credited | cn_… | credit note total |

``paid`` marks the payment that settled the invoice when the event shows it (the last
payment listed by ``invoice.paid``, or one that alone covers the amount due); the
first report of a payment wins in the ledger, so the kind is a hint: the invoice's
state comes from the sum of distinct payments. ``event_id`` is
``"<Stripe event id>:<provider_payment_id>"``: one Stripe event may carry several facts.
``invoice.finalized``, ``invoice.sent`` and ``invoice.overdue`` move no money and give
nothing, and so does ``credit_note.voided`` (logged: the canonical model has no kind
that reverses a credit yet).

Since 2025-03-31.basil charges and payment intents do not name their invoice: they are
linked through ``GET /v1/invoice_payments?payment[payment_intent]=…`` (api-facts §3.3).
Only invoices billsync created (``metadata.billsync_deal_id``) are reported; other
invoices in a shared Stripe account are not billsync's business.

An event in another API version than ours (the events API renders each event in the
version current when it happened) is not read from its payload: its object is fetched
again, which Stripe renders in our version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from connectors.stripe.client import StripeApi
from connectors.stripe.convert import DEAL_KEY, amount, metadata, timestamp
from sync.canonical import PaymentEvent, PaymentKind
from sync.logs import get_logger

__all__ = ["EVENT_TYPES", "EventFacts"]

log = get_logger("billsync.stripe.feed")
Obj = dict[str, Any]

EVENT_TYPES = (
    "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed", "invoice.voided",
    "invoice.marked_uncollectible", "invoice_payment.paid", "charge.refunded",
    "charge.refund.updated", "charge.dispute.created", "charge.dispute.closed",
    "credit_note.created", "credit_note.voided",
)  # fmt: skip
"""The events that can carry payment facts (what the feed polls; ≤ 20 per request)."""
_INQUIRY = ("warning_needs_response", "warning_under_review", "warning_closed")
_RETRIEVE = {
    "invoice": "invoices",
    "invoice_payment": "invoice_payments",
    "charge": "charges",
    "refund": "refunds",
    "dispute": "disputes",
    "credit_note": "credit_notes",
}


class EventFacts:
    """Turns one Stripe event into payment facts, fetching what the event only names.
    Caches invoice ownership and payment-intent links for its lifetime (one run)."""

    def __init__(self, api: StripeApi, *, now: Callable[[], datetime]) -> None:
        self._api = api
        self._now = now
        self._invoices: dict[str, Obj] = {}
        self._intent_invoice: dict[str, str | None] = {}

    def facts(self, event: Obj) -> list[PaymentEvent]:
        handler = _HANDLERS.get(str(event.get("type")))
        if handler is None:
            return []
        obj = dict(event.get("data", {}).get("object") or {})
        if event.get("api_version") != self._api.api_version and obj.get("id"):
            obj = self._fetch(str(obj.get("object")), str(obj["id"])) or obj
        return handler(self, event, obj)

    def _fetch(self, kind: str, object_id: str) -> Obj | None:
        service = _RETRIEVE.get(kind)
        if service is None:
            return None
        return self._api.call(
            f"{kind} read",
            lambda o: getattr(self._api.v1, service).retrieve(object_id, options=o),
        ).data

    def _event(
        self,
        event: Obj,
        inv: Mapping[str, Any],
        kind: PaymentKind,
        value: int | None,
        currency: str,
        fact_id: str,
        when: int | None = None,
    ) -> PaymentEvent:
        return PaymentEvent(
            provider="stripe",
            event_id=f"{event['id']}:{fact_id}",
            invoice_external_id=str(inv["id"]),
            kind=kind,
            amount=amount(value, currency),
            currency=currency,
            occurred_at=timestamp(when or event.get("created")) or self._now(),
            provider_payment_id=fact_id,
        )

    def _invoice(self, invoice_id: str | None) -> Obj | None:
        """The invoice if billsync made it (its metadata names a deal), else None."""
        if not invoice_id:
            return None
        if invoice_id not in self._invoices:
            found = self._fetch("invoice", invoice_id)
            self._invoices[invoice_id] = found or {}
        inv = self._invoices[invoice_id]
        return inv if metadata(inv).get(DEAL_KEY) else None

    def _invoice_of_intent(self, intent: str | None) -> Obj | None:
        if not intent:
            return None
        if intent not in self._intent_invoice:
            payments = self._api.v1.invoice_payments
            linked = next(
                self._api.pages(
                    "invoice payment lookup",
                    lambda p, o: payments.list(params=p, options=o),
                    {"payment": {"type": "payment_intent", "payment_intent": intent}},
                ),
                None,
            )
            self._intent_invoice[intent] = str(linked["invoice"]) if linked else None
        return self._invoice(self._intent_invoice[intent])

    def _paid_payments(self, inv: Obj) -> list[Obj]:
        embedded = inv.get("payments")
        if isinstance(embedded, Mapping) and not embedded.get("has_more"):
            found = list(embedded.get("data") or [])
        else:
            payments = self._api.v1.invoice_payments
            found = list(
                self._api.pages(
                    "invoice payment list",
                    lambda p, o: payments.list(params=p, options=o),
                    {"invoice": inv["id"], "status": "paid"},
                )
            )
        paid = [p for p in found if p.get("status") == "paid"]
        return sorted(paid, key=lambda p: (_paid_at(p) or 0, p["id"]))

    # --- handlers ------------------------------------------------------------------

    def _invoice_payment_paid(self, event: Obj, payment: Obj) -> list[PaymentEvent]:
        inv = self._invoice(payment.get("invoice"))
        if inv is None or payment.get("status") != "paid":
            return []
        return [self._payment(event, inv, payment)]

    def _payment(
        self, event: Obj, inv: Obj, payment: Obj, *, completes: bool = False
    ) -> PaymentEvent:
        paid = int(payment.get("amount_paid") or 0)
        full = completes or paid >= int(inv.get("amount_due") or 0)
        kind = PaymentKind.PAID if full else PaymentKind.PARTIALLY_PAID
        currency = str(payment.get("currency") or inv["currency"])
        return self._event(event, inv, kind, paid, currency, str(payment["id"]), _paid_at(payment))

    def _invoice_paid(self, event: Obj, obj: Obj) -> list[PaymentEvent]:
        if not metadata(obj).get(DEAL_KEY):
            return []
        payments = self._paid_payments(obj)
        off_stripe = int(obj.get("amount_paid") or 0) - sum(
            int(p.get("amount_paid") or 0) for p in payments
        )
        # The last payment (by paid_at) is the one that completed the invoice.
        last = len(payments) - 1 if off_stripe <= 0 else -1
        facts = [self._payment(event, obj, p, completes=i == last) for i, p in enumerate(payments)]
        if off_stripe > 0:
            facts.append(
                self._event(
                    event,
                    obj,
                    PaymentKind.PAID,
                    off_stripe,
                    str(obj["currency"]),
                    f"{obj['id']}:paid_out_of_band",
                    (obj.get("status_transitions") or {}).get("paid_at"),
                )
            )
        return facts

    def _payment_failed(self, event: Obj, obj: Obj) -> list[PaymentEvent]:
        attempt = obj.get("attempt_count") or 0
        return self._state(event, obj, PaymentKind.PAYMENT_FAILED, f"payment_failed:{attempt}")

    def _voided(self, event: Obj, obj: Obj) -> list[PaymentEvent]:
        return self._state(event, obj, PaymentKind.VOIDED, "voided")

    def _uncollectible(self, event: Obj, obj: Obj) -> list[PaymentEvent]:
        return self._state(event, obj, PaymentKind.UNCOLLECTIBLE, "uncollectible")

    def _state(self, event: Obj, obj: Obj, kind: PaymentKind, suffix: str) -> list[PaymentEvent]:
        """An invoice state change; the amount is what was still owed at that moment."""
        if not metadata(obj).get(DEAL_KEY):
            return []
        remaining = obj.get("amount_remaining")
        fact = f"{obj['id']}:{suffix}"
        return [self._event(event, obj, kind, remaining, str(obj["currency"]), fact)]

    def _charge_refunded(self, event: Obj, charge: Obj) -> list[PaymentEvent]:
        inv = self._invoice_of_intent(charge.get("payment_intent"))
        if inv is None:
            return []
        embedded = charge.get("refunds")
        if isinstance(embedded, Mapping) and not embedded.get("has_more"):
            refunds = list(embedded.get("data") or [])
        else:
            service = self._api.v1.refunds
            refunds = list(
                self._api.pages(
                    "refund list",
                    lambda p, o: service.list(params=p, options=o),
                    {"charge": charge["id"]},
                )
            )
        return [self._refund(event, inv, r) for r in refunds if r.get("status") == "succeeded"]

    def _refund_updated(self, event: Obj, refund: Obj) -> list[PaymentEvent]:
        if refund.get("status") != "succeeded":
            return []
        intent = refund.get("payment_intent")
        if not intent and refund.get("charge"):
            intent = (self._fetch("charge", str(refund["charge"])) or {}).get("payment_intent")
        inv = self._invoice_of_intent(intent)
        return [] if inv is None else [self._refund(event, inv, refund)]

    def _refund(self, event: Obj, inv: Obj, refund: Obj) -> PaymentEvent:
        currency = str(refund.get("currency") or inv["currency"])
        return self._event(
            event,
            inv,
            PaymentKind.REFUNDED,
            refund.get("amount"),
            currency,
            str(refund["id"]),
            refund.get("created"),
        )

    def _dispute(self, event: Obj, dispute: Obj) -> list[PaymentEvent]:
        intent = dispute.get("payment_intent")
        if not intent and dispute.get("charge"):
            intent = (self._fetch("charge", str(dispute["charge"])) or {}).get("payment_intent")
        inv = self._invoice_of_intent(intent)
        if inv is None:
            return []
        currency = str(dispute.get("currency") or inv["currency"])
        status = str(dispute.get("status"))
        if event["type"] == "charge.dispute.created":
            withdrawn = 0 if status in _INQUIRY else dispute.get("amount")
            return [
                self._event(
                    event,
                    inv,
                    PaymentKind.DISPUTED,
                    withdrawn,
                    currency,
                    str(dispute["id"]),
                    dispute.get("created"),
                )
            ]
        back = dispute.get("amount") if status == "won" else 0
        fact = f"{dispute['id']}:closed"
        return [self._event(event, inv, PaymentKind.DISPUTE_CLOSED, back, currency, fact)]

    def _credit_note(self, event: Obj, note: Obj) -> list[PaymentEvent]:
        inv = self._invoice(note.get("invoice"))
        if inv is None:
            return []
        if event["type"] == "credit_note.voided":
            log.warning(
                "stripe.credit_note_voided",
                credit_note=note.get("id"),
                invoice=inv["id"],
                note="no canonical kind reverses a credit; reconcile the invoice",
            )
            return []
        currency = str(note.get("currency") or inv["currency"])
        value = note.get("total")
        when = note.get("created")
        return [self._event(event, inv, PaymentKind.CREDITED, value, currency, note["id"], when)]


_HANDLERS: dict[str, Callable[[EventFacts, Obj, Obj], list[PaymentEvent]]] = {
    "invoice_payment.paid": EventFacts._invoice_payment_paid,
    "invoice.paid": EventFacts._invoice_paid,
    "invoice.payment_succeeded": EventFacts._invoice_paid,
    "invoice.payment_failed": EventFacts._payment_failed,
    "invoice.voided": EventFacts._voided,
    "invoice.marked_uncollectible": EventFacts._uncollectible,
    "charge.refunded": EventFacts._charge_refunded,
    "charge.refund.updated": EventFacts._refund_updated,
    "charge.dispute.created": EventFacts._dispute,
    "charge.dispute.closed": EventFacts._dispute,
    "credit_note.created": EventFacts._credit_note,
    "credit_note.voided": EventFacts._credit_note,
    # invoice.finalized, invoice.sent, invoice.overdue: no money moved.
}


def _paid_at(payment: Mapping[str, Any]) -> int | None:
    value = (payment.get("status_transitions") or {}).get("paid_at")
    return None if value is None else int(value)
