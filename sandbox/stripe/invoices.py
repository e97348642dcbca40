"""Invoices: create, retrieve, update, list, delete (drafts), add_lines, lines, search.

The lifecycle actions (finalize, send, pay, void, mark_uncollectible) are in
`lifecycle.py`; payments in `payments.py`.
"""

from __future__ import annotations

import copy

from starlette.routing import BaseRoute

from billsync.sandbox.stripe import errors, shapes, tax
from billsync.sandbox.stripe.api import Api, Call
from billsync.sandbox.stripe.billing import (
    MAX_LINES,
    PendingItem,
    attach,
    build_item,
    commit,
    recompute,
)
from billsync.sandbox.stripe.customers import custom_fields, search_result
from billsync.sandbox.stripe.listing import PAGING, list_object, page
from billsync.sandbox.stripe.params import Params, in_range, merge_metadata
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Obj, Origin, StripeStore
from billsync.sandbox.stripe.views import invoice as view
from billsync.sandbox.stripe.wire import new_id

_EDITABLE = (
    "auto_advance",
    "custom_fields",
    "days_until_due",
    "description",
    "due_date",
    "footer",
    "metadata",
    "number",
    "statement_descriptor",
    "collection_method",
    "payment_settings",
    "rendering",
    "effective_at",
)
_NOT_EMULATED = (
    "account_tax_ids", "application_fee_amount", "automatically_finalizes_at", "customer_account",
    "default_payment_method", "default_source", "discounts", "from_invoice",
    "issuer", "on_behalf_of", "shipping_cost", "shipping_details", "subscription", "transfer_data",
)  # fmt: skip
CREATE = (
    *_EDITABLE,
    *_NOT_EMULATED,
    "automatic_tax",
    "default_tax_rates",
    "currency",
    "customer",
    "pending_invoice_items_behavior",
)
UPDATE = (*_EDITABLE, *_NOT_EMULATED, "automatic_tax", "default_tax_rates")
# After finalization Stripe freezes money and collection_method; these stay editable.
_EDITABLE_FINALIZED = frozenset(
    {
        "auto_advance",
        "custom_fields",
        "description",
        "footer",
        "metadata",
        "days_until_due",
        "due_date",
        "rendering",
    }
)
STATUSES = ("draft", "open", "paid", "uncollectible", "void")
DAY = 86400


def _check_not_emulated(params: Params) -> None:
    for key in _NOT_EMULATED:
        if params.has(key):
            raise errors.not_emulated(
                key, "invoice-level discounts, Connect, subscriptions or shipping"
            )
    auto = params.sub("automatic_tax")
    if auto is not None:
        auto.allow(("enabled", "liability"))
        if auto.has("liability"):
            raise errors.not_emulated("automatic_tax[liability]", "Connect tax liability")


def _apply_tax(store: StripeStore, inv: Obj, params: Params) -> None:
    """`default_tax_rates` and `automatic_tax[enabled]` (see `tax`): not both."""
    if params.has("default_tax_rates"):
        inv["default_tax_rates"] = tax.rates(store, params, "default_tax_rates")
    auto = params.sub("automatic_tax")
    if auto is not None and auto.has("enabled"):
        enabled = auto.bool("enabled", False)
        inv["automatic_tax"] = {
            "disabled_reason": None,
            "enabled": enabled,
            "liability": {"type": "self"} if enabled else None,
            "provider": "stripe" if enabled else None,
            "status": None,
        }
    item_rates = any(
        line["parent"]["invoice_item_details"]["invoice_item"] in store.invoiceitems.by_id
        and store.invoiceitems.by_id[line["parent"]["invoice_item_details"]["invoice_item"]][
            "tax_rates"
        ]
        for line in store.lines.get(inv["id"], [])
    )
    if inv["automatic_tax"]["enabled"] and (inv["default_tax_rates"] or item_rates):
        raise errors.invalid(
            "automatic_tax[enabled]",
            "You cannot enable automatic tax on an invoice that has tax rates "
            "(default_tax_rates or line tax_rates).",
        )


def _apply(inv: Obj, params: Params, now: int) -> None:
    for key in ("description", "footer", "statement_descriptor"):
        if key in params:
            inv[key] = params.str(key)
    if "number" in params:
        inv["number"] = params.str("number", max_length=26)
    if "auto_advance" in params:
        inv["auto_advance"] = params.bool("auto_advance", False)
    if "collection_method" in params:
        inv["collection_method"] = params.enum(
            "collection_method", ("charge_automatically", "send_invoice")
        )
    if "custom_fields" in params:
        inv["custom_fields"] = custom_fields(params, "custom_fields")
    if "effective_at" in params:
        inv["effective_at"] = params.int("effective_at")
    settings = params.sub("payment_settings")
    if settings is not None:
        settings.allow(("default_mandate", "payment_method_options", "payment_method_types"))
        if "payment_method_types" in settings:
            types = settings.strings("payment_method_types")
            inv["payment_settings"]["payment_method_types"] = types or None
    if params.has("days_until_due") and params.has("due_date"):
        raise errors.invalid(
            "due_date", "You may only specify one of these parameters: days_until_due, due_date."
        )
    if params.has("days_until_due"):
        days = params.int("days_until_due", minimum=0)
        assert days is not None
        inv["due_date"] = inv["created"] + days * DAY
    elif params.has("due_date"):
        due = params.int("due_date")
        assert due is not None
        if due < now:
            raise errors.invalid("due_date", "The due date must be in the future.")
        inv["due_date"] = due
    inv["metadata"] = merge_metadata(inv["metadata"], params.metadata())
    if inv["collection_method"] == "send_invoice":
        if inv["due_date"] is None:
            raise errors.missing("days_until_due")
    elif params.has("days_until_due") or params.has("due_date"):
        raise errors.invalid(
            "days_until_due",
            "You can only set days_until_due or due_date when collection_method is send_invoice.",
        )


def create(state: State, params: Params, origin: Origin) -> Obj:
    store = state.store
    params.allow(CREATE)
    _check_not_emulated(params)
    customer_id = params.str("customer", required=True)
    assert customer_id is not None
    customer = store.customer(customer_id)
    currency = params.currency("currency") or customer["currency"] or "usd"
    inv = shapes.invoice(new_id("in_", 24), state.now(), customer, currency)
    _apply(inv, params, state.now())
    _apply_tax(store, inv, params)
    behavior = params.enum("pending_invoice_items_behavior", ("exclude", "include"), "exclude")
    store.invoices.add(inv)
    if customer["currency"] is None:
        customer["currency"] = currency
    if behavior == "include":
        pending = store.pending_items[customer["id"]]
        for item_id in [i for i in pending if store.invoiceitems.by_id[i]["currency"] == currency][
            :MAX_LINES
        ]:
            pending.remove(item_id)
            attach(store, inv, store.invoiceitems.by_id[item_id])
    recompute(store, inv)
    state.emit("invoice.created", view(store, inv), origin)
    return inv


def update(state: State, inv: Obj, params: Params, origin: Origin) -> Obj:
    params.allow(UPDATE)
    _check_not_emulated(params)
    if inv["status"] != "draft":
        frozen = [key for key in params.data if key not in _EDITABLE_FINALIZED]
        if frozen or (inv["status"] in ("paid", "void") and set(params.data) - {"metadata"}):
            key = frozen[0] if frozen else next(k for k in params.data if k != "metadata")
            raise errors.state(
                f"This invoice is no longer editable: {key} cannot be changed once the invoice is "
                f"{'finalized' if inv['status'] == 'open' else inv['status']}.",
                param=key,
            )
    before = view(state.store, inv)
    changed = copy.deepcopy(inv)
    _apply(changed, params, state.now())  # on a copy: a late validation error changes nothing
    _apply_tax(state.store, changed, params)
    inv.update(changed)
    if inv["status"] == "draft":
        recompute(state.store, inv)
    after = view(state.store, inv)
    state.emit("invoice.updated", after, origin, before)
    return inv


def add_lines(state: State, inv: Obj, params: Params, origin: Origin) -> Obj:
    store = state.store
    params.allow(("invoice_metadata", "lines"))
    if inv["status"] != "draft":
        raise errors.state(
            f"Lines can only be added to draft invoices; {inv['id']} is {inv['status']}.",
            param="lines",
        )
    lines = params.items("lines")
    if not lines:
        raise errors.missing("lines")
    if len(store.lines[inv["id"]]) + len(lines) > MAX_LINES:
        raise errors.state(
            f"Invoices can have at most {MAX_LINES} line items.",
            param="lines",
            code="invoice_line_item_limit_exceeded",
        )
    customer = store.customer(inv["customer"])
    before = view(store, inv)
    plans: list[Obj | PendingItem] = []
    for line in lines:
        line.allow(
            (
                "amount",
                "description",
                "discountable",
                "discounts",
                "invoice_item",
                "metadata",
                "period",
                "price_data",
                "pricing",
                "quantity",
                "quantity_decimal",
                "tax_amounts",
                "tax_rates",
            )
        )
        existing = line.str("invoice_item")
        if existing is not None:
            item = store.invoiceitems.require(existing, line.name("invoice_item"), in_path=False)
            if (
                item["invoice"] is not None
                or item["customer"] != inv["customer"]
                or item["currency"] != inv["currency"]
            ):
                raise errors.invalid(
                    line.name("invoice_item"),
                    f"Invoice item {existing} is not a pending {inv['currency']} item of this "
                    "customer.",
                )
            if any(p is item for p in plans):
                raise errors.invalid(
                    line.name("invoice_item"), f"Invoice item {existing} is listed twice."
                )
            plans.append(item)
        else:
            plans.append(build_item(state, line, customer, inv))
    # Everything validated: only now create objects, so a bad line changes nothing.
    for plan in plans:
        if isinstance(plan, PendingItem):
            item = commit(state, plan, origin)
            state.emit("invoiceitem.created", item, origin)
        else:
            item = plan
            store.pending_items[item["customer"]].remove(item["id"])
        attach(store, inv, item)
    inv["metadata"] = merge_metadata(inv["metadata"], params.metadata("invoice_metadata"))
    recompute(store, inv)
    state.emit("invoice.updated", view(store, inv), origin, before)
    return inv


def routes(api: Api, state: State) -> list[BaseRoute]:
    store = state.store

    def retrieve(call: Call) -> Obj:
        call.params.allow(())
        return view(store, store.invoices.require(call.id()))

    def list_(call: Call) -> Obj:
        params = call.params
        params.allow(
            (
                *PAGING,
                "collection_method",
                "created",
                "customer",
                "customer_account",
                "due_date",
                "status",
                "subscription",
            )
        )
        customer = params.str("customer")
        status = params.enum("status", STATUSES)
        method = params.enum("collection_method", ("charge_automatically", "send_invoice"))
        created, due = params.range("created"), params.range("due_date")
        subscription = params.str("subscription")

        def match(invoice_id: str) -> bool:
            inv = store.invoices.by_id[invoice_id]
            return (
                (customer is None or inv["customer"] == customer)
                and (status is None or inv["status"] == status)
                and (method is None or inv["collection_method"] == method)
                and subscription is None  # no subscriptions: nothing matches one
                and in_range(inv["created"], created)
                and (due is None or in_range(inv["due_date"], due))
            )

        found, more = page(store.invoices.newest_first(), params, "invoice", match)
        return list_object(
            [view(store, store.invoices.by_id[i]) for i in found], more, "/v1/invoices"
        )

    def delete(call: Call) -> Obj:
        call.params.allow(())
        inv = store.invoices.require(call.id())
        if inv["status"] != "draft":
            raise errors.state("You can only delete draft invoices.")
        snapshot = view(store, inv)
        for line in store.lines.pop(inv["id"], []):
            store.invoiceitems.remove(line["parent"]["invoice_item_details"]["invoice_item"])
        store.invoices.remove(inv["id"])
        state.emit("invoice.deleted", snapshot, call.origin)
        return {"id": inv["id"], "object": "invoice", "deleted": True}

    def lines(call: Call) -> Obj:
        call.params.allow(PAGING)
        inv = store.invoices.require(call.id())
        all_lines = store.lines.get(inv["id"], [])
        by_id = {line["id"]: line for line in all_lines}
        found, more = page([line["id"] for line in all_lines], call.params, "line item")
        return list_object([by_id[i] for i in found], more, f"/v1/invoices/{inv['id']}/lines")

    def search(call: Call) -> Obj:
        return search_result(state, call.params, "invoice", "/v1/invoices/search")

    return [
        api.route("GET", "/v1/invoices/search", search),
        api.route(
            "POST",
            "/v1/invoices",
            lambda call: view(store, create(state, call.params, call.origin)),
        ),
        api.route("GET", "/v1/invoices", list_),
        api.route("GET", "/v1/invoices/{id}", retrieve),
        api.route(
            "POST",
            "/v1/invoices/{id}",
            lambda call: view(
                store, update(state, store.invoices.require(call.id()), call.params, call.origin)
            ),
        ),
        api.route("DELETE", "/v1/invoices/{id}", delete),
        api.route(
            "POST",
            "/v1/invoices/{id}/add_lines",
            lambda call: view(
                store, add_lines(state, store.invoices.require(call.id()), call.params, call.origin)
            ),
        ),
        api.route("GET", "/v1/invoices/{id}/lines", lines),
    ]
