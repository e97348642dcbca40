"""Stripe events as hints: which invoice (and which payment) an event says changed.

The money is never taken from an event (DESIGN.md "Money model"): the engine reads the
invoice named here fresh (`StripeFeed.read_invoice_money`) and records what Stripe
holds. So every event that can change an invoice's money yields at least one
`PaymentEvent` naming the invoice, whatever it says about the money: a refund that
*failed*, a dispute *won*, a credit note *voided* are hints like any other. ``kind`` and
``amount`` say what the event reported, for logs; nothing believes them.

| event | kind | provider_payment_id |
|---|---|---|
| invoice_payment.paid | paid (default payment) / partially_paid | inpay_… |
| invoice.paid, invoice.payment_succeeded | paid | — |
| invoice.payment_failed | payment_failed | — |
| invoice.voided, invoice.deleted | voided | — |
| invoice.marked_uncollectible | uncollectible | — |
| invoice.updated, invoice.overpaid | the invoice's status (open: partially_paid) | — |
| charge.refunded | refunded | each re_… of the charge |
| charge.refund.updated (any status, failed too) | refunded | re_… |
| charge.dispute.created, .updated, .funds_withdrawn | disputed | dp_… |
| charge.dispute.closed, .funds_reinstated | dispute_closed | ``dp_…:closed`` |
| credit_note.created, .updated, .voided | credited (voided: amount 0) | cn_… |

``event_id`` is ``"<Stripe event id>:<provider_payment_id or invoice id>"``: one Stripe
event may carry several hints. ``invoice.updated`` is a hint only when something the
money or the due date depends on changed (``previous_attributes`` names it), and never
for a draft (a draft holds no money): billsync's own invoice creation sends several.

No event is filtered by who made the invoice: an invoice billsync does not know is
ignored by the engine, so no call is spent fetching invoices for their metadata.

Since 2025-03-31.basil charges, refunds and disputes do not name their invoice: they are
linked through ``GET /v1/invoice_payments?payment[payment_intent]=…`` (api-facts §3.3),
one call per PaymentIntent, cached for the run. ``charge.refunds`` is includable
(api-facts §5): absent from a webhook's charge, it is listed (``GET /v1/refunds?charge=``).

An event in another API version than ours (the events API renders each event in the
version current when it happened) is not read from its payload: its object is fetched
again, which Stripe renders in our version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from billsync.connectors.stripe.client import StripeApi
from billsync.connectors.stripe.convert import amount, timestamp
from billsync.core.canonical import PaymentEvent, PaymentKind

__all__ = ["EVENT_TYPES", "EventFacts"]

Obj = dict[str, Any]

EVENT_TYPES = (
    "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed", "invoice.voided",
    "invoice.marked_uncollectible", "invoice.updated", "invoice.overpaid", "invoice.deleted",
    "invoice_payment.paid", "charge.refunded", "charge.refund.updated",
    "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
    "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated",
    "credit_note.created", "credit_note.updated", "credit_note.voided",
)  # fmt: skip
"""The events that can change an invoice's money (what the feed polls; ≤ 20 per request)."""
_INQUIRY = ("warning_needs_response", "warning_under_review", "warning_closed")
_RETRIEVE = {
    "invoice": "invoices",
    "invoice_payment": "invoice_payments",
    "charge": "charges",
    "refund": "refunds",
    "dispute": "disputes",
    "credit_note": "credit_notes",
}
# invoice.updated matters when one of these changed (money, status, due date, number).
_UPDATE_FIELDS = frozenset(
    {
        "status", "amount_due", "amount_paid", "amount_remaining", "amount_overpaid",
        "total", "total_excluding_tax", "total_taxes", "due_date", "number",
        "pre_payment_credit_notes_amount", "post_payment_credit_notes_amount",
        "attempt_count", "metadata", "effective_at",
    }
)  # fmt: skip
_STATUS_KIND = {
    "paid": PaymentKind.PAID,
    "void": PaymentKind.VOIDED,
    "uncollectible": PaymentKind.UNCOLLECTIBLE,
}


class EventFacts:
    """Turns one Stripe event into hints, fetching what the event only names.
    Caches payment-intent links for its lifetime (one run)."""

    def __init__(self, api: StripeApi, *, now: Callable[[], datetime]) -> None:
        self._api = api
        self._now = now
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

    def _hint(
        self,
        event: Obj,
        invoice_id: str,
        kind: PaymentKind,
        value: Any,
        currency: str,
        fact_id: str | None = None,
        when: int | None = None,
    ) -> PaymentEvent:
        return PaymentEvent(
            provider="stripe",
            event_id=f"{event['id']}:{fact_id or invoice_id}",
            invoice_external_id=invoice_id,
            kind=kind,
            amount=amount(max(0, int(value or 0)), currency),
            currency=currency,
            occurred_at=timestamp(when or event.get("created")) or self._now(),
            provider_payment_id=fact_id,
        )

    def _invoice_of_intent(self, intent: str | None) -> str | None:
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
        return self._intent_invoice[intent]

    def _intent_of(self, obj: Obj) -> str | None:
        """The PaymentIntent of a refund or dispute (through its charge when not named)."""
        intent = obj.get("payment_intent")
        if not intent and obj.get("charge"):
            intent = (self._fetch("charge", str(obj["charge"])) or {}).get("payment_intent")
        return str(intent) if intent else None

    # --- handlers ------------------------------------------------------------------

    def _invoice_payment_paid(self, event: Obj, payment: Obj) -> list[PaymentEvent]:
        if not payment.get("invoice"):
            return []
        # The default payment is for the whole amount due; others are partial payments.
        whole = payment.get("is_default") and payment.get("status") == "paid"
        kind = PaymentKind.PAID if whole else PaymentKind.PARTIALLY_PAID
        paid_at = (payment.get("status_transitions") or {}).get("paid_at")
        return [
            self._hint(
                event,
                str(payment["invoice"]),
                kind,
                payment.get("amount_paid"),
                str(payment["currency"]),
                str(payment["id"]),
                paid_at,
            )
        ]

    def _invoice(self, kind: PaymentKind, field: str) -> Callable[[Obj, Obj], list[PaymentEvent]]:
        def handler(event: Obj, inv: Obj) -> list[PaymentEvent]:
            return [self._hint(event, str(inv["id"]), kind, inv.get(field), str(inv["currency"]))]

        return handler

    def _invoice_paid(self, event: Obj, inv: Obj) -> list[PaymentEvent]:
        return self._invoice(PaymentKind.PAID, "amount_paid")(event, inv)

    def _payment_failed(self, event: Obj, inv: Obj) -> list[PaymentEvent]:
        return self._invoice(PaymentKind.PAYMENT_FAILED, "amount_remaining")(event, inv)

    def _voided(self, event: Obj, inv: Obj) -> list[PaymentEvent]:
        return self._invoice(PaymentKind.VOIDED, "amount_remaining")(event, inv)

    def _uncollectible(self, event: Obj, inv: Obj) -> list[PaymentEvent]:
        return self._invoice(PaymentKind.UNCOLLECTIBLE, "amount_remaining")(event, inv)

    def _updated(self, event: Obj, inv: Obj) -> list[PaymentEvent]:
        if inv.get("status") == "draft":
            return []
        previous = (event.get("data") or {}).get("previous_attributes")
        if isinstance(previous, Mapping) and not _UPDATE_FIELDS & set(previous):
            return []
        kind = _STATUS_KIND.get(str(inv.get("status")), PaymentKind.PARTIALLY_PAID)
        return self._invoice(kind, "amount_paid")(event, inv)

    def _charge_refunded(self, event: Obj, charge: Obj) -> list[PaymentEvent]:
        invoice_id = self._invoice_of_intent(charge.get("payment_intent"))
        if invoice_id is None:
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
        currency = str(charge["currency"])
        if not refunds:  # still a hint: the charge changed
            return [
                self._hint(
                    event, invoice_id, PaymentKind.REFUNDED, charge.get("amount_refunded"), currency
                )
            ]
        return [self._refund(event, invoice_id, r, currency) for r in refunds]

    def _refund_updated(self, event: Obj, refund: Obj) -> list[PaymentEvent]:
        invoice_id = self._invoice_of_intent(self._intent_of(refund))
        if invoice_id is None:
            return []
        return [self._refund(event, invoice_id, refund, str(refund["currency"]))]

    def _refund(self, event: Obj, invoice_id: str, refund: Obj, currency: str) -> PaymentEvent:
        value = refund.get("amount") if refund.get("status") != "failed" else 0
        return self._hint(
            event,
            invoice_id,
            PaymentKind.REFUNDED,
            value,
            str(refund.get("currency") or currency),
            str(refund["id"]),
            refund.get("created"),
        )

    def _dispute(self, event: Obj, dispute: Obj) -> list[PaymentEvent]:
        invoice_id = self._invoice_of_intent(self._intent_of(dispute))
        if invoice_id is None:
            return []
        currency = str(dispute["currency"])
        status = str(dispute.get("status"))
        if event["type"] in ("charge.dispute.closed", "charge.dispute.funds_reinstated"):
            back = dispute.get("amount") if status == "won" else 0
            fact = f"{dispute['id']}:closed"
            return [self._hint(event, invoice_id, PaymentKind.DISPUTE_CLOSED, back, currency, fact)]
        withdrawn = 0 if status in _INQUIRY else dispute.get("amount")
        return [
            self._hint(
                event,
                invoice_id,
                PaymentKind.DISPUTED,
                withdrawn,
                currency,
                str(dispute["id"]),
                dispute.get("created"),
            )
        ]

    def _credit_note(self, event: Obj, note: Obj) -> list[PaymentEvent]:
        if not note.get("invoice"):
            return []
        value = 0 if note.get("status") == "void" else note.get("total")
        return [
            self._hint(
                event,
                str(note["invoice"]),
                PaymentKind.CREDITED,
                value,
                str(note["currency"]),
                str(note["id"]),
                note.get("created"),
            )
        ]


_HANDLERS: dict[str, Callable[[EventFacts, Obj, Obj], list[PaymentEvent]]] = {
    "invoice_payment.paid": EventFacts._invoice_payment_paid,
    "invoice.paid": EventFacts._invoice_paid,
    "invoice.payment_succeeded": EventFacts._invoice_paid,
    "invoice.payment_failed": EventFacts._payment_failed,
    "invoice.voided": EventFacts._voided,
    "invoice.deleted": EventFacts._voided,
    "invoice.marked_uncollectible": EventFacts._uncollectible,
    "invoice.updated": EventFacts._updated,
    "invoice.overpaid": EventFacts._updated,
    "charge.refunded": EventFacts._charge_refunded,
    "charge.refund.updated": EventFacts._refund_updated,
    "charge.dispute.created": EventFacts._dispute,
    "charge.dispute.updated": EventFacts._dispute,
    "charge.dispute.funds_withdrawn": EventFacts._dispute,
    "charge.dispute.closed": EventFacts._dispute,
    "charge.dispute.funds_reinstated": EventFacts._dispute,
    "credit_note.created": EventFacts._credit_note,
    "credit_note.updated": EventFacts._credit_note,
    "credit_note.voided": EventFacts._credit_note,
    # invoice.finalized, invoice.sent, invoice.overdue: no money moved.
}
