"""An invoice's money as Stripe holds it (`StripeFeed.read_invoice_money`): the authority.

Per invoice, in as few calls as Stripe allows (no batch retrieve exists):

1. ``GET /v1/invoices/{id}?expand[]=payments&expand[]=payments.data.payment.payment_intent``
   — ``payments`` is an *includable* field, returned only when expanded (api-facts §5);
   the intents show which payments were attempted and failed (``last_payment_error``).
   More than the embedded page of payments: ``GET /v1/invoice_payments?invoice=``.
2. ``GET /v1/credit_notes?invoice=`` (not for drafts: only finalized invoices have them).
3. Per PaymentIntent that paid, or whose last attempt failed:
   ``GET /v1/charges?payment_intent=&expand[]=data.refunds`` — one call gives the failed
   attempts (failed charges), the refunds (``charge.refunds`` is includable too) and
   whether the charge was disputed; and only for a disputed charge
   ``GET /v1/disputes?payment_intent=``.

So an open, unpaid invoice costs 2 calls, a paid one 3, a disputed one 4 (and a draft 1).

Facts, keyed by Stripe's own ids (``billsync.core.money_state`` decides what counts):

| Stripe | fact_id | kind | state |
|---|---|---|---|
| InvoicePayment ``status=paid`` | ``inpay_…`` | payment | applied (``amount_paid``, ``paid_at``) |
| ``amount_paid`` beyond the paid payments | ``in_…:paid_out_of_band`` | payment | applied |
| customer credit balance applied at finalization | ``in_…:customer_balance`` | credit | applied |
| credit note, ``pre_payment_amount`` | ``cn_…:pre`` | credit | applied / void |
| credit note, ``post_payment_amount`` | ``cn_…:post`` | post_payment_credit | applied / void |
| refund | ``re_…`` | refund | succeeded; pending, requires_action → pending; failed,
  canceled → failed |
| dispute | ``dp_…`` | dispute | warning_* → inquiry; needs_response, under_review → open;
  won; lost |
| failed charge | ``ch_…`` | payment_failed | (moves no money; ``created`` orders it) |

Payment failures: Stripe records a declined attempt as a failed Charge on the invoice's
PaymentIntent (and as the intent's ``last_payment_error``); the invoice itself keeps only
``attempt_count``/``attempted``, with no time. Charges are read for intents that paid
(needed anyway for refunds and disputes) and for intents whose ``last_payment_error`` is
set, so an unpaid invoice whose card was declined shows the failure with its time. A
failure on an intent that was later canceled (the invoice got paid another way, or was
voided) is not read: it can no longer be the latest collection attempt that matters.

A customer balance applied at finalization lowers ``amount_due`` without a payment
(``starting_balance`` → ``ending_balance``); it is reported as a credit so the facts
explain ``amount_remaining``.

Ids Stripe does not have (404, or a deleted draft's stub) are absent from the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from billsync.connectors.stripe.client import StripeApi
from billsync.connectors.stripe.convert import DEAL_KEY, TARGET, amount, metadata
from billsync.core.canonical import FactState, InvoiceMoney, InvoiceStatus, MoneyFact, MoneyFactKind
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = ["InvoiceMoneyReader", "invoice_money"]

Obj = dict[str, Any]

_STATUS = {
    "draft": InvoiceStatus.DRAFT,
    "open": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "void": InvoiceStatus.VOID,
    "uncollectible": InvoiceStatus.UNCOLLECTIBLE,
}
_REFUND_STATE = {
    "succeeded": FactState.SUCCEEDED,
    "pending": FactState.PENDING,
    "requires_action": FactState.PENDING,
    "failed": FactState.FAILED,
    "canceled": FactState.FAILED,
}
_DISPUTE_STATE = {
    "warning_needs_response": FactState.INQUIRY,
    "warning_under_review": FactState.INQUIRY,
    # An inquiry that ended: nothing was withdrawn and it is no longer open, which is
    # what a won dispute amounts to for the money (funds in place, nothing pending).
    "warning_closed": FactState.WON,
    "needs_response": FactState.OPEN,
    "under_review": FactState.OPEN,
    "won": FactState.WON,
    "lost": FactState.LOST,
}
_INVOICE_EXPAND = ["payments", "payments.data.payment.payment_intent"]


class InvoiceMoneyReader:
    """Reads invoices' money facts; one instance per feed (holds no state between calls)."""

    def __init__(self, api: StripeApi) -> None:
        self._api = api

    def read(self, external_ids: Sequence[str]) -> dict[str, InvoiceMoney]:
        found: dict[str, InvoiceMoney] = {}
        for invoice_id in dict.fromkeys(external_ids):  # each id once, in order
            inv = self._invoice(invoice_id)
            if inv is None:
                continue
            payments = self._payments(inv)
            notes = [] if inv.get("status") == "draft" else self._credit_notes(invoice_id)
            charges: list[Obj] = []
            disputes: list[Obj] = []
            for intent in _intents_to_read(payments):
                intent_charges = self._charges(intent)
                charges.extend(intent_charges)
                if any(c.get("disputed") for c in intent_charges):
                    disputes.extend(self._disputes(intent))
            refunds = [r for c in charges for r in self._refunds(c)]
            found[invoice_id] = invoice_money(inv, payments, notes, charges, refunds, disputes)
        return found

    # --- reads ---------------------------------------------------------------------

    def _invoice(self, invoice_id: str) -> Obj | None:
        invoices = self._api.v1.invoices
        try:
            inv = self._api.call(
                "invoice money read",
                lambda o: invoices.retrieve(
                    invoice_id, params={"expand": _INVOICE_EXPAND}, options=o
                ),
            ).data
        except ConnectorError as exc:
            if exc.error_class is ErrorClass.NOT_FOUND:
                return None
            raise
        return None if inv.get("deleted") else inv

    def _list(self, operation: str, service: Any, params: Mapping[str, Any]) -> list[Obj]:
        return list(
            self._api.pages(operation, lambda p, o: service.list(params=p, options=o), params)
        )

    def _payments(self, inv: Obj) -> list[Obj]:
        embedded = inv.get("payments")
        if isinstance(embedded, Mapping) and not embedded.get("has_more"):
            return list(embedded.get("data") or [])
        return self._list(
            "invoice payment list",
            self._api.v1.invoice_payments,
            {"invoice": inv["id"], "expand": ["data.payment.payment_intent"]},
        )

    def _credit_notes(self, invoice_id: str) -> list[Obj]:
        return self._list("credit note list", self._api.v1.credit_notes, {"invoice": invoice_id})

    def _charges(self, intent_id: str) -> list[Obj]:
        return self._list(
            "charge list",
            self._api.v1.charges,
            {"payment_intent": intent_id, "expand": ["data.refunds"]},
        )

    def _refunds(self, charge: Obj) -> list[Obj]:
        embedded = charge.get("refunds")
        if isinstance(embedded, Mapping) and not embedded.get("has_more"):
            return list(embedded.get("data") or [])
        return self._list("refund list", self._api.v1.refunds, {"charge": charge["id"]})

    def _disputes(self, intent_id: str) -> list[Obj]:
        return self._list("dispute list", self._api.v1.disputes, {"payment_intent": intent_id})


def _intent(payment: Mapping[str, Any]) -> Obj | None:
    value = (payment.get("payment") or {}).get("payment_intent")
    return value if isinstance(value, dict) else None


def _intent_id(payment: Mapping[str, Any]) -> str | None:
    value = (payment.get("payment") or {}).get("payment_intent")
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value else None


def _intents_to_read(payments: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """PaymentIntents worth a charges list: those that paid, and open ones whose last
    attempt failed. Each once."""
    seen: set[str] = set()
    for payment in payments:
        intent_id = _intent_id(payment)
        if intent_id is None or intent_id in seen:
            continue
        intent = _intent(payment) or {}
        failed = payment.get("status") == "open" and intent.get("last_payment_error")
        if payment.get("status") == "paid" or failed:
            seen.add(intent_id)
            yield intent_id


# --- mapping (pure) ------------------------------------------------------------------


def _when(*values: Any) -> datetime:
    for value in values:
        if value is not None:
            return datetime.fromtimestamp(int(value), UTC)
    raise ValueError("a Stripe object without any timestamp")


def _day(value: Any) -> date | None:
    return None if value is None else datetime.fromtimestamp(int(value), UTC).date()


def invoice_money(
    inv: Mapping[str, Any],
    payments: Sequence[Mapping[str, Any]],
    notes: Sequence[Mapping[str, Any]],
    charges: Sequence[Mapping[str, Any]],
    refunds: Sequence[Mapping[str, Any]],
    disputes: Sequence[Mapping[str, Any]],
) -> InvoiceMoney:
    """The canonical money of one invoice from the Stripe objects read for it."""
    currency = str(inv["currency"])
    invoice_id = str(inv["id"])
    transitions = inv.get("status_transitions") or {}

    def fact(
        fact_id: str,
        kind: MoneyFactKind,
        value: Any,
        when: datetime,
        state: FactState = FactState.APPLIED,
    ) -> MoneyFact:
        return MoneyFact(
            fact_id=fact_id,
            kind=kind,
            state=state,
            amount=amount(value, currency),
            occurred_at=when,
        )

    facts: list[MoneyFact] = []
    paid_sum = 0
    for payment in payments:
        if payment.get("status") != "paid":
            continue
        paid = int(payment.get("amount_paid") or 0)
        paid_sum += paid
        paid_at = (payment.get("status_transitions") or {}).get("paid_at")
        facts.append(
            fact(
                str(payment["id"]),
                MoneyFactKind.PAYMENT,
                paid,
                _when(paid_at, payment.get("created")),
            )
        )
    off_stripe = int(inv.get("amount_paid") or 0) - paid_sum
    if off_stripe > 0:
        facts.append(
            fact(
                f"{invoice_id}:paid_out_of_band",
                MoneyFactKind.PAYMENT,
                off_stripe,
                _when(transitions.get("paid_at"), transitions.get("finalized_at"), inv["created"]),
            )
        )
    start, end = inv.get("starting_balance"), inv.get("ending_balance")
    if start is not None and end is not None and int(end) > int(start):
        facts.append(
            fact(
                f"{invoice_id}:customer_balance",
                MoneyFactKind.CREDIT,
                int(end) - int(start),
                _when(transitions.get("finalized_at"), inv["created"]),
            )
        )
    for note in notes:
        state = FactState.VOID if note.get("status") == "void" else FactState.APPLIED
        when = _when(note.get("effective_at"), note.get("created"))
        for part, kind in (
            ("pre", MoneyFactKind.CREDIT),
            ("post", MoneyFactKind.POST_PAYMENT_CREDIT),
        ):
            value = int(note.get(f"{part}_payment_amount") or 0)
            if value:
                facts.append(fact(f"{note['id']}:{part}", kind, value, when, state))
    for refund in refunds:
        state = _REFUND_STATE.get(str(refund.get("status")), FactState.PENDING)
        facts.append(
            fact(
                str(refund["id"]),
                MoneyFactKind.REFUND,
                refund.get("amount"),
                _when(refund.get("created")),
                state,
            )
        )
    for dispute in disputes:
        state = _DISPUTE_STATE.get(str(dispute.get("status")), FactState.OPEN)
        facts.append(
            fact(
                str(dispute["id"]),
                MoneyFactKind.DISPUTE,
                dispute.get("amount"),
                _when(dispute.get("created")),
                state,
            )
        )
    for charge in charges:
        if charge.get("status") == "failed":
            facts.append(
                fact(
                    str(charge["id"]),
                    MoneyFactKind.PAYMENT_FAILED,
                    charge.get("amount"),
                    _when(charge.get("created")),
                )
            )
    total = int(inv.get("total") or 0)
    net = inv.get("total_excluding_tax")
    net = total if net is None else int(net)
    return InvoiceMoney(
        target=TARGET,
        external_id=invoice_id,
        currency=currency,
        status=_STATUS[str(inv["status"])],
        net=amount(net, currency),
        tax=amount(total - net, currency),
        total=amount(total, currency),
        facts=tuple(facts),
        reported_balance=amount(inv.get("amount_remaining"), currency),
        reported_paid=amount(inv.get("amount_paid"), currency),
        due_date=_day(inv.get("due_date")),
        issue_date=_day(inv.get("effective_at") or transitions.get("finalized_at")),
        deal_id=metadata(inv).get(DEAL_KEY),
        number=inv.get("number"),
    )
