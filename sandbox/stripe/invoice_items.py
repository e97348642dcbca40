"""Invoice items (`/v1/invoiceitems`): one per invoice line.

With `invoice=in_…` the item becomes a line of that draft at once; without, it waits on
the customer as a pending item, which an invoice created with
`pending_invoice_items_behavior=include` (not the default) pulls in.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from billsync.sandbox.stripe import errors
from billsync.sandbox.stripe.api import Api, Call, retrieve
from billsync.sandbox.stripe.billing import MAX_LINES, attach, build_item, commit, recompute
from billsync.sandbox.stripe.listing import PAGING, list_object, page
from billsync.sandbox.stripe.params import in_range, merge_metadata
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Obj
from billsync.sandbox.stripe.views import invoice as view

CREATE = (
    "amount", "currency", "customer", "customer_account", "description", "discountable",
    "discounts", "invoice", "metadata", "period", "price_data", "pricing", "quantity",
    "quantity_decimal", "subscription", "tax_behavior", "tax_code", "tax_rates",
    "unit_amount_decimal",
)  # fmt: skip


def routes(api: Api, state: State) -> list[BaseRoute]:
    store = state.store

    def line_of(item: Obj) -> Obj | None:
        for line in store.lines.get(item["invoice"] or "", []):
            if line["parent"]["invoice_item_details"]["invoice_item"] == item["id"]:
                return line
        return None

    def editable_invoice(item: Obj) -> Obj | None:
        if item["invoice"] is None:
            return None
        inv = store.invoices.require(item["invoice"])
        if inv["status"] != "draft":
            raise errors.state(
                f"Invoice item {item['id']} is on a finalized invoice and can no longer be changed."
            )
        return inv

    def create(call: Call) -> Obj:
        params = call.params
        params.allow(CREATE)
        customer_id = params.str("customer", required=True)
        assert customer_id is not None
        customer = store.customer(customer_id)
        inv = None
        invoice_id = params.str("invoice")
        if invoice_id is not None:
            inv = store.invoices.require(invoice_id, "invoice", in_path=False)
            if inv["status"] != "draft":
                raise errors.state(
                    f"Invoice {invoice_id} is {inv['status']}: items go on draft invoices only.",
                    param="invoice",
                )
            if inv["customer"] != customer_id:
                raise errors.invalid(
                    "invoice", f"Invoice {invoice_id} belongs to another customer."
                )
        pending = build_item(state, params, customer, inv)
        if inv is not None and len(store.lines[inv["id"]]) >= MAX_LINES:
            raise errors.state(
                f"Invoices can have at most {MAX_LINES} line items.",
                param="invoice",
                code="invoice_line_item_limit_exceeded",
            )
        item = commit(state, pending, call.origin)
        if inv is None:
            store.pending_items[customer_id].append(item["id"])
            state.emit("invoiceitem.created", item, call.origin)
            return item
        before = view(store, inv)
        attach(store, inv, item)
        recompute(store, inv)
        state.emit("invoiceitem.created", item, call.origin)
        state.emit("invoice.updated", view(store, inv), call.origin, before)
        return item

    def update(call: Call) -> Obj:
        params = call.params
        params.allow(("description", "metadata"))
        item = store.invoiceitems.require(call.id())
        editable_invoice(item)
        inv = store.invoices.get(item["invoice"]) if item["invoice"] else None
        before = view(store, inv) if inv is not None else None
        if "description" in params:
            item["description"] = params.str("description")
        item["metadata"] = merge_metadata(item["metadata"], params.metadata())
        line = line_of(item)
        if line is not None:
            line["description"], line["metadata"] = item["description"], dict(item["metadata"])
        # No event for the item itself: Stripe has no `invoiceitem.updated` (dropped from
        # Event.type in 2023, stripe-node 13.5.0); the invoice whose line changed is updated.
        if inv is not None and before is not None:
            state.emit("invoice.updated", view(store, inv), call.origin, before)
        return item

    def delete(call: Call) -> Obj:
        call.params.allow(())
        item = store.invoiceitems.require(call.id())
        inv = editable_invoice(item)
        before = view(store, inv) if inv else None
        line = line_of(item)
        if inv is not None and line is not None:
            store.lines[inv["id"]].remove(line)
            recompute(store, inv)
        else:
            store.pending_items[item["customer"]].remove(item["id"])
        store.invoiceitems.remove(item["id"])
        state.emit("invoiceitem.deleted", item, call.origin)
        if inv is not None:
            state.emit("invoice.updated", view(store, inv), call.origin, before)
        return {"id": item["id"], "object": "invoiceitem", "deleted": True}

    def list_(call: Call) -> Obj:
        params = call.params
        params.allow((*PAGING, "created", "customer", "customer_account", "invoice", "pending"))
        customer, invoice_id = params.str("customer"), params.str("invoice")
        pending = params.bool("pending", False) if params.has("pending") else None
        created = params.range("created")

        def match(item_id: str) -> bool:
            item = store.invoiceitems.by_id[item_id]
            return (
                (customer is None or item["customer"] == customer)
                and (invoice_id is None or item["invoice"] == invoice_id)
                and (pending is None or (item["invoice"] is None) == pending)
                and in_range(item["date"], created)
            )

        found, more = page(store.invoiceitems.newest_first(), params, "invoiceitem", match)
        return list_object([store.invoiceitems.by_id[i] for i in found], more, "/v1/invoiceitems")

    return [
        api.route("POST", "/v1/invoiceitems", create),
        api.route("GET", "/v1/invoiceitems", list_),
        api.route("GET", "/v1/invoiceitems/{id}", retrieve(store.invoiceitems)),
        api.route("POST", "/v1/invoiceitems/{id}", update),
        api.route("DELETE", "/v1/invoiceitems/{id}", delete),
    ]
