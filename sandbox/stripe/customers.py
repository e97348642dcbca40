"""Customers: create, retrieve, update, list (by email), delete and search.

Retrieving a deleted customer answers 200 with the `{"id", "object", "deleted": true}`
stub, as Stripe does; updating it or billing it fails with "No such customer".
"""

from __future__ import annotations

import copy
import re
from typing import Any

from starlette.routing import BaseRoute

from billsync.sandbox.stripe import errors, shapes
from billsync.sandbox.stripe.api import Api, Call
from billsync.sandbox.stripe.listing import PAGING, list_object, page
from billsync.sandbox.stripe.params import Params, in_range, merge_metadata
from billsync.sandbox.stripe.search import page_token, read_page_token
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Obj, Origin
from billsync.sandbox.stripe.views import invoice as invoice_view
from billsync.sandbox.stripe.wire import new_id

_COMMON = (
    "address", "balance", "business_name", "description", "email", "individual_name",
    "invoice_prefix", "invoice_settings", "metadata", "name", "next_invoice_sequence",
    "phone", "preferred_locales", "shipping", "tax", "tax_exempt", "validate",
)  # fmt: skip
_NOT_EMULATED = ("cash_balance", "payment_method", "source", "tax_id_data", "test_clock")
CREATE = (*_COMMON, *_NOT_EMULATED)
UPDATE = (*_COMMON, "cash_balance", "default_source", "source")
_ADDRESS = ("city", "country", "line1", "line2", "postal_code", "state")
_PREFIX = re.compile(r"^[A-Z0-9]{3,12}$")


def _address(params: Params, key: str) -> Obj | None:
    sub = params.sub(key)
    if sub is None:
        return None
    sub.allow(_ADDRESS)
    return {name: sub.str(name) for name in _ADDRESS}


def _apply(customer: Obj, params: Params) -> None:
    for key in (*_NOT_EMULATED, "default_source"):
        if params.has(key):
            raise errors.not_emulated(key, "payment sources, cash balances, tax ids or test clocks")
    for key in ("description", "name", "phone"):
        if key in params:
            customer[key] = params.str(key)
    for key in ("business_name", "individual_name"):  # optional fields: absent when unset
        if key in params:
            value = params.str(key)
            if value:
                customer[key] = value
            else:
                customer.pop(key, None)
    if "email" in params:
        customer["email"] = params.str("email", max_length=512)
    if "address" in params:
        customer["address"] = _address(params, "address")
    if "shipping" in params:
        shipping = params.sub("shipping")
        if shipping is not None:
            shipping.allow(("address", "name", "phone"))
            customer["shipping"] = {
                "address": _address(shipping, "address") or dict.fromkeys(_ADDRESS),
                "name": shipping.str("name", required=True),
                "phone": shipping.str("phone"),
            }
        else:
            customer["shipping"] = None
    if "balance" in params:
        customer["balance"] = params.int("balance") or 0
    if "tax_exempt" in params:
        customer["tax_exempt"] = params.enum("tax_exempt", ("none", "exempt", "reverse"), "none")
    if "preferred_locales" in params:
        customer["preferred_locales"] = params.strings("preferred_locales")
    if "invoice_prefix" in params:
        prefix = params.str("invoice_prefix") or ""
        if not _PREFIX.match(prefix):
            raise errors.invalid(
                "invoice_prefix", "Invoice prefixes must be 3–12 uppercase letters or numbers."
            )
        customer["invoice_prefix"] = prefix
    if "next_invoice_sequence" in params:
        customer["next_invoice_sequence"] = params.int("next_invoice_sequence", minimum=1) or 1
    settings = params.sub("invoice_settings")
    if settings is not None:
        settings.allow(("custom_fields", "default_payment_method", "footer", "rendering_options"))
        current = customer["invoice_settings"]
        if "footer" in settings:
            current["footer"] = settings.str("footer")
        if "custom_fields" in settings:
            current["custom_fields"] = custom_fields(settings, "custom_fields")
    customer["metadata"] = merge_metadata(customer["metadata"], params.metadata())


def custom_fields(params: Params, key: str) -> list[Obj] | None:
    """Up to 4 `{name ≤ 40, value ≤ 140}` pairs shown on the invoice."""
    items = params.items(key, max_items=4)
    if not items:
        return None
    out = []
    for item in items:
        item.allow(("name", "value"))
        out.append(
            {
                "name": item.str("name", required=True, max_length=40),
                "value": item.str("value", required=True, max_length=140),
            }
        )
    return out


def create(state: State, params: Params, origin: Origin, *, seeded: bool = False) -> Obj:
    store = state.store
    params.allow(CREATE if not seeded else (*CREATE, "id"))
    customer_id = params.str("id") if seeded else None
    customer = shapes.customer(customer_id or new_id("cus_", 14), state.now())
    _apply(customer, params)
    store.customers.add(customer)
    if customer["email"]:
        store.customers_by_email[customer["email"]].append(customer["id"])
    if seeded:
        state.index_now(customer)
    else:
        state.emit("customer.created", customer, origin)
    return customer


def update(state: State, customer: Obj, params: Params, origin: Origin) -> Obj:
    params.allow(UPDATE)
    before = copy.deepcopy(customer)
    changed = copy.deepcopy(customer)
    _apply(changed, params)  # on a copy: a late validation error must change nothing
    customer.update(changed)
    if before["email"] != customer["email"]:
        emails = state.store.customers_by_email
        if before["email"]:
            emails[before["email"]].remove(customer["id"])
        if customer["email"]:
            emails[customer["email"]].append(customer["id"])
    state.emit("customer.updated", customer, origin, before)
    return customer


def delete(state: State, customer: Obj, origin: Origin) -> Obj:
    store = state.store
    store.customers.remove(customer["id"])
    store.deleted_customers.add(customer["id"])
    if customer["email"]:
        store.customers_by_email[customer["email"]].remove(customer["id"])
    state.emit("customer.deleted", customer, origin)
    return _stub(customer["id"])


def _stub(customer_id: str) -> Obj:
    return {"id": customer_id, "object": "customer", "deleted": True}


def routes(api: Api, state: State) -> list[BaseRoute]:
    store = state.store

    def create_(call: Call) -> Obj:
        return create(state, call.params, call.origin)

    def retrieve(call: Call) -> Obj:
        call.params.allow(())
        if call.id() in store.deleted_customers:
            return _stub(call.id())
        return store.customers.require(call.id())

    def update_(call: Call) -> Obj:
        return update(state, store.customers.require(call.id()), call.params, call.origin)

    def delete_(call: Call) -> Obj:
        call.params.allow(())
        return delete(state, store.customers.require(call.id()), call.origin)

    def list_(call: Call) -> Obj:
        params = call.params
        params.allow((*PAGING, "created", "email", "test_clock"))
        created = params.range("created")
        email = params.str("email", max_length=512)
        ids = (
            list(reversed(store.customers_by_email.get(email, [])))
            if email
            else store.customers.newest_first()
        )

        def match(customer_id: str) -> bool:
            return in_range(store.customers.by_id[customer_id]["created"], created)

        found, more = page(ids, params, "customer", match if created else None)
        return list_object([store.customers.by_id[i] for i in found], more, "/v1/customers")

    def search(call: Call) -> Obj:
        return search_result(state, call.params, "customer", "/v1/customers/search")

    return [
        api.route("GET", "/v1/customers/search", search),
        api.route("POST", "/v1/customers", create_),
        api.route("GET", "/v1/customers", list_),
        api.route("GET", "/v1/customers/{id}", retrieve),
        api.route("POST", "/v1/customers/{id}", update_),
        api.route("DELETE", "/v1/customers/{id}", delete_),
    ]


def search_result(state: State, params: Params, kind: str, url: str) -> dict[str, Any]:
    """`search_result` pages over what the (lagging) index matches now."""
    params.allow(("limit", "page", "query"))
    query = params.str("query", required=True)
    assert query is not None
    limit = params.int("limit", minimum=1, maximum=100) or 10
    token = params.str("page")
    offset = read_page_token(token) if token else 0
    collection = state.store.customers if kind == "customer" else state.store.invoices
    ids = state.search[kind].search(query, state.store.clock.now().timestamp())
    live = [i for i in ids if i in collection.by_id]
    chunk = live[offset : offset + limit]
    more = offset + limit < len(live)
    if kind == "invoice":
        data = [invoice_view(state.store, collection.by_id[i]) for i in chunk]
    else:
        data = [collection.by_id[i] for i in chunk]
    return {
        "object": "search_result",
        "data": data,
        "has_more": more,
        "next_page": page_token(offset + limit) if more else None,
        "url": url,
    }
