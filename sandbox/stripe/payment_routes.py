"""Read endpoints for payments, and refunds: invoice_payments, payment_intents, charges,
refunds, disputes.

`GET /v1/invoice_payments?invoice=in_…` is how an integration learns what was paid
since 2025-03-31.basil; `payment[type]=payment_intent&payment[payment_intent]=pi_…` maps
a charge's PaymentIntent back to its invoice.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import BaseRoute

from billsync.sandbox.stripe import errors
from billsync.sandbox.stripe.api import Api, Call, retrieve
from billsync.sandbox.stripe.listing import PAGING, list_object, page
from billsync.sandbox.stripe.params import in_range
from billsync.sandbox.stripe.payments import refund
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Collection, Obj

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _lister(
    collection: Collection,
    url: str,
    filters: tuple[str, ...],
    extra: Callable[[Call], Callable[[Obj], bool]] | None = None,
) -> Callable[[Call], Obj]:
    """A list endpoint whose filters are plain equality on top-level fields."""

    def handler(call: Call) -> Obj:
        params = call.params
        params.allow((*PAGING, "created", *filters))
        wanted = {key: params.str(key) for key in filters if key != "payment" and params.has(key)}
        created = params.range("created")
        more_match = extra(call) if extra else None

        def match(object_id: str) -> bool:
            obj = collection.by_id[object_id]
            return (
                all(obj.get(k) == v for k, v in wanted.items())
                and in_range(obj["created"], created)
                and (more_match is None or more_match(obj))
            )

        found, more = page(collection.newest_first(), params, collection.label, match)
        return list_object([collection.by_id[i] for i in found], more, url)

    return handler


def routes(api: Api, state: State) -> list[BaseRoute]:
    store = state.store

    def payment_filter(call: Call) -> Callable[[Obj], bool]:
        sub = call.params.sub("payment")
        if sub is None:
            return lambda obj: True
        sub.allow(("payment_intent", "payment_record", "type"))
        kind = sub.enum("type", ("payment_intent", "payment_record"))
        if kind is None:
            raise errors.missing("payment[type]")
        intent = sub.str("payment_intent")
        return lambda obj: (
            obj["payment"]["type"] == kind
            and (intent is None or obj["payment"].get("payment_intent") == intent)
        )

    def create_refund(call: Call) -> Obj:
        params = call.params
        params.allow(
            (
                "amount",
                "charge",
                "currency",
                "customer",
                "instructions_email",
                "metadata",
                "origin",
                "payment_intent",
                "reason",
                "refund_application_fee",
                "reverse_transfer",
            )
        )
        if params.has("charge") == params.has("payment_intent"):
            raise errors.StripeError(
                "You must pass exactly one of charge or payment_intent.",
                param="charge",
                saved=False,
            )
        if params.has("charge"):
            charge = store.charges.require(params.str("charge") or "", "charge", in_path=False)
        else:
            intent = store.payment_intents.require(
                params.str("payment_intent") or "", "payment_intent", in_path=False
            )
            if intent["status"] != "succeeded" or not intent["latest_charge"]:
                raise errors.state(
                    f"PaymentIntent {intent['id']} has no successful charge to refund.",
                    param="payment_intent",
                )
            charge = store.charges.by_id[intent["latest_charge"]]
        reason = params.enum("reason", REFUND_REASONS)
        metadata = {k: v for k, v in (params.metadata() or {}).items() if v}
        return refund(state, charge, params.int("amount", minimum=1), reason, metadata, call.origin)

    return [
        api.route(
            "GET",
            "/v1/invoice_payments",
            _lister(
                store.invoice_payments,
                "/v1/invoice_payments",
                ("invoice", "status", "payment"),
                payment_filter,
            ),
        ),
        api.route("GET", "/v1/invoice_payments/{id}", retrieve(store.invoice_payments)),
        api.route(
            "GET",
            "/v1/payment_intents",
            _lister(store.payment_intents, "/v1/payment_intents", ("customer",)),
        ),
        api.route("GET", "/v1/payment_intents/{id}", retrieve(store.payment_intents)),
        api.route(
            "GET",
            "/v1/charges",
            _lister(store.charges, "/v1/charges", ("customer", "payment_intent")),
        ),
        api.route("GET", "/v1/charges/{id}", retrieve(store.charges)),
        api.route("POST", "/v1/refunds", create_refund),
        api.route(
            "GET",
            "/v1/refunds",
            _lister(store.refunds, "/v1/refunds", ("charge", "payment_intent")),
        ),
        api.route("GET", "/v1/refunds/{id}", retrieve(store.refunds)),
        api.route(
            "GET",
            "/v1/disputes",
            _lister(store.disputes, "/v1/disputes", ("charge", "payment_intent")),
        ),
        api.route("GET", "/v1/disputes/{id}", retrieve(store.disputes)),
    ]
