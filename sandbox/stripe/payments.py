"""Money moving: invoice payments, failures, refunds and disputes.

The post-basil model (2025-03-31 and the 2025-05-28 partial payments change):
finalizing an invoice creates a *default* invoice payment (`is_default: true`, status
`open`) backed by a PaymentIntent for the full amount due. Paying it in full uses that
PaymentIntent; a partial payment is a separate PaymentIntent attached to the invoice,
each with its own invoice_payment and `invoice_payment.paid` event. When the invoice is
paid, a default payment that was never used is canceled. Charges and PaymentIntents do
not name their invoice: go through invoice_payments.
"""

from __future__ import annotations

import copy

from billsync.sandbox.stripe import errors, payment_shapes
from billsync.sandbox.stripe.money import check_amount
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Obj, Origin
from billsync.sandbox.stripe.views import invoice as view
from billsync.sandbox.stripe.wire import new_id

DISPUTE_REASONS = (
    "bank_cannot_process", "check_returned", "credit_not_processed", "customer_initiated",
    "debit_not_authorized", "duplicate", "fraudulent", "general", "incorrect_account_details",
    "insufficient_funds", "noncompliant", "product_not_received", "product_unacceptable",
    "subscription_canceled", "unrecognized",
)  # fmt: skip


def _payments(state: State, inv: Obj) -> list[Obj]:
    store = state.store
    return [store.invoice_payments.by_id[p] for p in store.payments_by_invoice.get(inv["id"], [])]


def _open_default(state: State, inv: Obj) -> Obj | None:
    return next(
        (p for p in _payments(state, inv) if p["is_default"] and p["status"] == "open"), None
    )


def _new_intent(state: State, inv: Obj, amount: int) -> Obj:
    intent = payment_shapes.payment_intent(state.now(), amount, inv["currency"], inv["customer"])
    state.store.payment_intents.add(intent)
    state.store.invoice_by_intent[intent["id"]] = inv["id"]
    return intent


def _link(state: State, inv: Obj, intent: Obj, amount: int, is_default: bool) -> Obj:
    payment = payment_shapes.invoice_payment(state.now(), inv, intent["id"], amount, is_default)
    state.store.invoice_payments.add(payment)
    state.store.payments_by_invoice[inv["id"]].append(payment["id"])
    return payment


def open_default_payment(state: State, inv: Obj) -> None:
    """At finalization: the default payment that can pay the invoice in full."""
    intent = _new_intent(state, inv, inv["amount_due"])
    _link(state, inv, intent, inv["amount_due"], is_default=True)


def _cancel(state: State, payment: Obj, reason: str) -> None:
    now = state.now()
    payment["status"] = "canceled"
    payment["status_transitions"]["canceled_at"] = now
    intent = state.store.payment_intents.by_id[payment["payment"]["payment_intent"]]
    intent["status"], intent["canceled_at"], intent["cancellation_reason"] = "canceled", now, reason


def cancel_open_payments(state: State, inv: Obj, reason: str) -> None:
    for payment in _payments(state, inv):
        if payment["status"] == "open":
            _cancel(state, payment, reason)


def mark_paid(state: State, inv: Obj, origin: Origin) -> None:
    inv["status"] = "paid"
    inv["status_transitions"]["paid_at"] = state.now()
    cancel_open_payments(state, inv, "automatic")


def record_payment(state: State, inv: Obj, amount: int, origin: Origin) -> Obj:
    """A successful card payment of `amount` against an open invoice."""
    store = state.store
    if inv["status"] not in ("open", "uncollectible"):
        raise errors.state(f"Invoice {inv['id']} is {inv['status']} and cannot take payments.")
    if amount <= 0:
        raise errors.invalid("amount", "The payment amount must be positive.")
    check_amount(inv["currency"], amount, "amount")
    before = view(store, inv)
    default = _open_default(state, inv)
    if default is not None and amount == inv["amount_remaining"] == default["amount_requested"]:
        payment = default
        intent = store.payment_intents.by_id[default["payment"]["payment_intent"]]
    else:
        intent = _new_intent(state, inv, amount)
        payment = _link(state, inv, intent, amount, is_default=False)
    now = state.now()
    intent["payment_method"] = intent["payment_method"] or new_id("pm_", 24)
    charge = payment_shapes.charge(now, intent, amount, store.base_url, succeeded=True)
    store.charges.add(charge)
    intent.update(
        status="succeeded",
        amount_received=amount,
        latest_charge=charge["id"],
        last_payment_error=None,
    )
    payment.update(status="paid", amount_paid=amount)
    payment["status_transitions"]["paid_at"] = now
    inv["amount_paid"] += amount
    inv["amount_remaining"] = max(0, inv["amount_due"] - inv["amount_paid"])
    inv["amount_overpaid"] = max(0, inv["amount_paid"] - inv["amount_due"])
    inv["attempted"] = True
    inv["attempt_count"] += 1
    state.emit("payment_intent.succeeded", intent, origin)
    state.emit("charge.succeeded", charge, origin)
    state.emit("invoice_payment.paid", payment, origin)
    if inv["amount_remaining"] == 0:
        mark_paid(state, inv, origin)
        after = view(store, inv)
        state.emit("invoice.paid", after, origin, before)
        state.emit("invoice.payment_succeeded", after, origin, before)
        if inv["amount_overpaid"]:
            state.emit("invoice.overpaid", after, origin, before)
    else:
        state.emit("invoice.updated", view(store, inv), origin, before)
    return payment


def fail_payment(state: State, inv: Obj, origin: Origin) -> Obj:
    """A declined card: the invoice stays open, `invoice.payment_failed` is sent."""
    store = state.store
    if inv["status"] != "open":
        raise errors.state(
            f"Invoice {inv['id']} is {inv['status']}; only open invoices can fail a payment."
        )
    before = view(store, inv)
    default = _open_default(state, inv)
    if default is not None:
        intent = store.payment_intents.by_id[default["payment"]["payment_intent"]]
    else:
        intent = _new_intent(state, inv, inv["amount_remaining"])
        _link(state, inv, intent, inv["amount_remaining"], is_default=False)
    intent["payment_method"] = intent["payment_method"] or new_id("pm_", 24)
    charge = payment_shapes.charge(
        state.now(), intent, intent["amount"], store.base_url, succeeded=False
    )
    store.charges.add(charge)
    intent["latest_charge"] = charge["id"]
    intent["status"] = "requires_payment_method"
    intent["last_payment_error"] = {
        "charge": charge["id"],
        "code": "card_declined",
        "decline_code": "generic_decline",
        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
        "message": "Your card was declined.",
        "type": "card_error",
    }
    inv["attempted"] = True
    inv["attempt_count"] += 1
    state.emit("charge.failed", charge, origin)
    state.emit("payment_intent.payment_failed", intent, origin)
    state.emit("invoice.payment_failed", view(store, inv), origin, before)
    return intent


def latest_paid_charge(state: State, inv: Obj) -> Obj:
    store = state.store
    for payment in reversed(_payments(state, inv)):
        if payment["status"] == "paid":
            intent = store.payment_intents.by_id[payment["payment"]["payment_intent"]]
            return store.charges.by_id[intent["latest_charge"]]
    raise errors.state(f"Invoice {inv['id']} has no successful payment.")


def refund(
    state: State,
    charge: Obj,
    amount: int | None,
    reason: str | None,
    metadata: dict[str, str],
    origin: Origin,
) -> Obj:
    store = state.store
    refundable = charge["amount_captured"] - charge["amount_refunded"]
    if charge["status"] != "succeeded":
        raise errors.state(
            f"Charge {charge['id']} did not succeed and cannot be refunded.", param="charge"
        )
    if charge["disputed"]:
        raise errors.state(
            f"Charge {charge['id']} has been charged back; cannot issue a refund.",
            code="charge_disputed",
        )
    if refundable <= 0:
        raise errors.state(
            f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = refundable if amount is None else amount
    if amount <= 0 or amount > refundable:
        raise errors.invalid(
            "amount",
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable}).",
            "amount_too_large",
        )
    check_amount(charge["currency"], amount, "amount")
    before = copy.deepcopy(charge)
    made = payment_shapes.refund(state.now(), charge, amount, reason)
    made["metadata"] = metadata
    store.refunds.add(made)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
    charge["refunds"]["data"].insert(0, made)
    state.emit("charge.refunded", charge, origin, before)
    state.emit("refund.created", made, origin)
    return made


REFUND_FAILURE_REASONS = (
    "charge_for_pending_refund_disputed", "declined", "expired_or_canceled_card",
    "insufficient_funds", "lost_or_stolen_card", "merchant_request", "unknown",
)  # fmt: skip


def fail_refund(state: State, made: Obj, reason: str, origin: Origin) -> Obj:
    """A refund the bank sent back: Stripe moves a refund from `succeeded` (or `pending`)
    to `failed`, returns the money to the balance and sends `charge.refund.updated` (with
    `refund.updated` and `refund.failed`). Source: docs.stripe.com/refunds#failed-refunds
    ("refunds can fail ... after the refund's status was succeeded"); the charge's
    `amount_refunded` no longer counts it [?: inferred from the balance being restored]."""
    store = state.store
    if made["status"] not in ("succeeded", "pending", "requires_action"):
        raise errors.state(f"Refund {made['id']} is {made['status']} and cannot fail.")
    if reason not in REFUND_FAILURE_REASONS:
        raise errors.invalid(
            "failure_reason", f"failure_reason must be one of {', '.join(REFUND_FAILURE_REASONS)}"
        )
    charge = store.charges.by_id[made["charge"]]
    before_charge = copy.deepcopy(charge)
    made["status"] = "failed"
    made["failure_reason"] = reason
    made["failure_balance_transaction"] = new_id("txn_")
    charge["amount_refunded"] -= made["amount"]
    charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"] > 0
    state.emit("charge.refund.updated", made, origin)
    state.emit("refund.updated", made, origin)
    state.emit("refund.failed", made, origin)
    state.emit("charge.updated", charge, origin, before_charge)
    return made


_INQUIRY = ("warning_needs_response", "warning_under_review", "warning_closed")


def open_dispute(
    state: State,
    charge: Obj,
    amount: int | None,
    reason: str,
    origin: Origin,
    *,
    inquiry: bool = False,
) -> Obj:
    """A dispute (chargeback) or, with ``inquiry``, an inquiry (``warning_needs_response``).
    A chargeback withdraws the amount at once (`charge.dispute.funds_withdrawn`); an
    inquiry withdraws nothing. Source: docs.stripe.com/disputes/how-disputes-work
    (inquiries, "funds withdrawn" and "funds reinstated" events)."""
    if charge["status"] != "succeeded":
        raise errors.state(f"Charge {charge['id']} did not succeed and cannot be disputed.")
    if charge["disputed"]:
        raise errors.state(f"Charge {charge['id']} is already disputed.")
    if reason not in DISPUTE_REASONS:
        raise errors.invalid("reason", f"Unknown dispute reason {reason!r}.")
    amount = charge["amount"] - charge["amount_refunded"] if amount is None else amount
    if not 0 < amount <= charge["amount"]:
        raise errors.invalid(
            "amount", f"A dispute amount must be between 1 and {charge['amount']}."
        )
    dispute = payment_shapes.dispute(state.now(), charge, amount, reason)
    if inquiry:
        dispute["status"] = "warning_needs_response"
        dispute["is_charge_refundable"] = True
    state.store.disputes.add(dispute)
    charge["disputed"] = True
    state.emit("charge.dispute.created", dispute, origin)
    if not inquiry:
        state.emit("charge.dispute.funds_withdrawn", dispute, origin)
    return dispute


def update_dispute(state: State, dispute: Obj, status: str, origin: Origin) -> Obj:
    """Evidence submitted (``under_review``, ``warning_under_review``), or an inquiry
    escalated to a chargeback (``needs_response``: funds are withdrawn then)."""
    allowed = {
        "warning_needs_response": ("warning_under_review", "needs_response"),
        "warning_under_review": ("needs_response",),
        "needs_response": ("under_review",),
    }
    if status not in allowed.get(dispute["status"], ()):
        raise errors.state(
            f"Dispute {dispute['id']} is {dispute['status']}; cannot become {status}."
        )
    before = copy.deepcopy(dispute)
    escalated = dispute["status"] in _INQUIRY and status not in _INQUIRY
    dispute["status"] = status
    if escalated:
        dispute["is_charge_refundable"] = False
    state.emit("charge.dispute.updated", dispute, origin, before)
    if escalated:
        state.emit("charge.dispute.funds_withdrawn", dispute, origin)
    return dispute


def close_dispute(state: State, dispute: Obj, status: str, origin: Origin) -> Obj:
    """A chargeback closes ``won`` (funds reinstated: `charge.dispute.funds_reinstated`)
    or ``lost``; an inquiry closes ``warning_closed`` (nothing was withdrawn)."""
    inquiry = dispute["status"] in _INQUIRY
    if dispute["status"] in ("won", "lost", "warning_closed"):
        raise errors.state(f"Dispute {dispute['id']} is already closed ({dispute['status']}).")
    if status not in (("warning_closed",) if inquiry else ("won", "lost")):
        raise errors.invalid(
            "status",
            "An inquiry closes as warning_closed."
            if inquiry
            else "A dispute closes as won or lost.",
        )
    before = copy.deepcopy(dispute)
    dispute["status"] = status
    state.emit("charge.dispute.closed", dispute, origin, before)
    if status == "won":
        state.emit("charge.dispute.funds_reinstated", dispute, origin)
    return dispute
