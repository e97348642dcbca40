"""Invoice state changes: finalize, send, pay, void, mark_uncollectible.

draft -> open (finalize) -> paid | void | uncollectible; uncollectible -> paid | void.
Stripe finalizes a draft by itself before sending it or attempting payment. Once
finalized, an invoice's money fields are frozen and it has a number, a hosted page and a
default payment.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from billsync.sandbox.stripe import errors
from billsync.sandbox.stripe.api import Api, Call
from billsync.sandbox.stripe.billing import apply_customer_credit, assign_number, recompute
from billsync.sandbox.stripe.payments import (
    cancel_open_payments,
    mark_paid,
    open_default_payment,
    record_payment,
)
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Obj, Origin
from billsync.sandbox.stripe.views import invoice as view


def finalize(
    state: State,
    inv: Obj,
    origin: Origin,
    auto_advance: bool | None = None,
    *,
    auto_email: bool = True,
) -> Obj:
    store = state.store
    if inv["status"] != "draft":
        raise errors.state(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice."
        )
    customer = store.customer(inv["customer"])
    before = view(store, inv)
    # The customer_* fields follow the customer until finalization, then stay as issued.
    for field in ("address", "email", "name", "phone", "shipping", "tax_exempt"):
        inv[f"customer_{field}"] = customer[field]
    recompute(store, inv)
    if inv["automatic_tax"]["enabled"] and inv["automatic_tax"]["status"] != "complete":
        # Stripe Tax needs the customer's location; finalization fails without it.
        raise errors.StripeError(
            "The customer's location isn't recognized: set the customer's address "
            "(country at least) before finalizing an invoice with automatic tax.",
            code="customer_tax_location_invalid",
            param="customer",
        )
    apply_customer_credit(store, inv)
    assign_number(store, inv)
    now = state.now()
    inv["status"] = "open"
    inv["status_transitions"]["finalized_at"] = now
    inv["effective_at"] = inv["effective_at"] or now
    inv["hosted_invoice_url"] = f"{store.base_url}/i/{inv['id']}"
    inv["invoice_pdf"] = f"{store.base_url}/i/{inv['id']}/pdf"
    if auto_advance is not None:
        inv["auto_advance"] = auto_advance
    if inv["amount_due"] > 0:
        open_default_payment(state, inv)
    state.emit("invoice.finalized", view(store, inv), origin, before)
    if auto_email and _stripe_emails(state, inv):
        # Automatic advancement: Stripe emails the finalized invoice itself ("Emailing
        # invoices ... depending on your settings"); the invoice has no sent timestamp in
        # status_transitions, only the event tells. Test mode sends no email [?].
        state.emit("invoice.sent", view(store, inv), origin)
    if inv["amount_due"] == 0:
        # Nothing to collect: Stripe marks a zero-amount invoice paid on finalization.
        paid_before = view(store, inv)
        mark_paid(state, inv, origin)
        state.emit("invoice.paid", view(store, inv), origin, paid_before)
    return inv


def _stripe_emails(state: State, inv: Obj) -> bool:
    """An auto-advancing send_invoice invoice with something to pay and an address to
    send to, on an account set to email finalized invoices [?: the conditions Stripe
    documents are auto_advance and the email settings; the address and amount are ours]."""
    return bool(
        inv["auto_advance"]
        and inv["collection_method"] == "send_invoice"
        and inv["amount_due"] > 0
        and inv.get("customer_email")
        and state.email_finalized_invoices
    )


def send(state: State, inv: Obj, origin: Origin) -> Obj:
    if inv["collection_method"] != "send_invoice":
        raise errors.state(
            "You can only manually send an invoice if its collection method is 'send_invoice'."
        )
    if inv["status"] == "void":
        raise errors.state("You can't send a voided invoice.")
    if inv["status"] == "draft":
        finalize(state, inv, origin, auto_email=False)  # one email: this send's
    # Test mode sends no email, but the event fires (api-facts §3.3).
    state.emit("invoice.sent", view(state.store, inv), origin)
    return inv


def pay(state: State, inv: Obj, out_of_band: bool, origin: Origin) -> Obj:
    store = state.store
    if inv["status"] == "draft":
        finalize(state, inv, origin)
    if inv["status"] == "paid":
        raise errors.state("Invoice is already paid.")
    if inv["status"] == "void":
        raise errors.state("This invoice has been voided and can no longer be paid.")
    if not out_of_band:
        # No payment methods are emulated: the customer's card always succeeds.
        record_payment(state, inv, inv["amount_remaining"], origin)
        return inv
    before = view(store, inv)
    inv["amount_paid_off_stripe"] += inv["amount_remaining"]
    inv["amount_paid"] += inv["amount_remaining"]
    inv["amount_remaining"] = 0
    mark_paid(state, inv, origin)
    after = view(store, inv)
    state.emit("invoice.paid", after, origin, before)
    return inv


def void(state: State, inv: Obj, origin: Origin) -> Obj:
    if inv["status"] not in ("open", "uncollectible"):
        raise errors.state(
            f"You can only void open or uncollectible invoices; {inv['id']} is {inv['status']}."
        )
    before = view(state.store, inv)
    inv["status"] = "void"
    inv["status_transitions"]["voided_at"] = state.now()
    cancel_open_payments(state, inv, "void_invoice")
    state.emit("invoice.voided", view(state.store, inv), origin, before)
    return inv


def mark_uncollectible(state: State, inv: Obj, origin: Origin) -> Obj:
    if inv["status"] != "open":
        raise errors.state(
            f"You can only mark open invoices as uncollectible; {inv['id']} is {inv['status']}."
        )
    before = view(state.store, inv)
    inv["status"] = "uncollectible"
    inv["status_transitions"]["marked_uncollectible_at"] = state.now()
    state.emit("invoice.marked_uncollectible", view(state.store, inv), origin, before)
    return inv


def routes(api: Api, state: State) -> list[BaseRoute]:
    store = state.store

    def finalize_(call: Call) -> Obj:
        call.params.allow(("auto_advance",))
        auto = call.params.bool("auto_advance", False) if call.params.has("auto_advance") else None
        return view(store, finalize(state, store.invoices.require(call.id()), call.origin, auto))

    def send_(call: Call) -> Obj:
        call.params.allow(())
        return view(store, send(state, store.invoices.require(call.id()), call.origin))

    def pay_(call: Call) -> Obj:
        params = call.params
        params.allow(
            ("forgive", "mandate", "off_session", "paid_out_of_band", "payment_method", "source")
        )
        for key in ("mandate", "source"):
            if params.has(key):
                raise errors.not_emulated(key, "mandates or payment sources")
        params.bool("forgive", False)
        params.bool("off_session", True)
        out_of_band = params.bool("paid_out_of_band", False)
        return view(store, pay(state, store.invoices.require(call.id()), out_of_band, call.origin))

    def void_(call: Call) -> Obj:
        call.params.allow(())
        return view(store, void(state, store.invoices.require(call.id()), call.origin))

    def uncollectible(call: Call) -> Obj:
        call.params.allow(())
        return view(
            store, mark_uncollectible(state, store.invoices.require(call.id()), call.origin)
        )

    return [
        api.route("POST", "/v1/invoices/{id}/finalize", finalize_),
        api.route("POST", "/v1/invoices/{id}/send", send_),
        api.route("POST", "/v1/invoices/{id}/pay", pay_),
        api.route("POST", "/v1/invoices/{id}/void", void_),
        api.route("POST", "/v1/invoices/{id}/mark_uncollectible", uncollectible),
    ]
