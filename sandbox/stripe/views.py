"""Objects as the API returns them: embedded lists assembled, and `expand[]`.

An invoice embeds its first 10 lines (`has_more` tells the client to page through
`/v1/invoices/{id}/lines`). `expand[]` replaces id strings with the objects they name,
up to 4 levels deep (Stripe's limit).

*Includable* fields (`INCLUDABLE`) are stored and assembled like any other but returned
only when `expand[]` names them, as Stripe does: `invoice.payments` and `charge.refunds`
("This field is not included by default. To include it in the response, expand the
field" — Stripe API reference, Invoice object and Charge object; api-facts §5;
singer-io/tap-stripe expands `data.refunds` on charges because "not available by
default"). Events render objects without them too.
"""

from __future__ import annotations

import copy
from typing import Any

from billsync.sandbox.stripe.errors import StripeError
from billsync.sandbox.stripe.listing import list_object
from billsync.sandbox.stripe.store import Obj, StripeStore

EMBEDDED_LINES = 10
MAX_EXPAND_DEPTH = 4
INCLUDABLE: dict[str, tuple[str, ...]] = {"invoice": ("payments",), "charge": ("refunds",)}


def invoice(store: StripeStore, inv: Obj) -> Obj:
    view = dict(inv)
    lines = store.lines.get(inv["id"], [])
    view["lines"] = list_object(
        lines[:EMBEDDED_LINES], len(lines) > EMBEDDED_LINES, f"/v1/invoices/{inv['id']}/lines"
    )
    payment_ids = store.payments_by_invoice.get(inv["id"], [])
    payments = [store.invoice_payments.by_id[p] for p in reversed(payment_ids)]
    view["payments"] = list_object(
        payments[:EMBEDDED_LINES],
        len(payments) > EMBEDDED_LINES,
        f"/v1/invoice_payments?invoice={inv['id']}",
    )
    return view


def resolve(store: StripeStore, object_id: str) -> Obj | None:
    """The object an id names, for `expand[]` (None when unknown)."""
    prefix = object_id.split("_", 1)[0] + "_"
    if prefix == "in_":
        found = store.invoices.get(object_id)
        return invoice(store, found) if found else None
    table = {
        "cus_": store.customers,
        "prod_": store.products,
        "price_": store.prices,
        "ii_": store.invoiceitems,
        "inpay_": store.invoice_payments,
        "pi_": store.payment_intents,
        "ch_": store.charges,
        "re_": store.refunds,
        "dp_": store.disputes,
        "cn_": store.credit_notes,
        "txr_": store.tax_rates,
    }
    if prefix == "di_":
        return store.discounts.get(object_id)
    collection = table.get(prefix)
    return collection.get(object_id) if collection else None


def expand(store: StripeStore, obj: Obj, paths: list[str]) -> Obj:
    if not paths:
        return obj
    result = copy.deepcopy(obj)
    for path in paths:
        parts = path.split(".")
        if len(parts) > MAX_EXPAND_DEPTH + (1 if parts[0] == "data" else 0):
            raise StripeError(
                f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. "
                f"Property: {path}",
                param="expand",
                saved=False,
            )
        _expand(store, result, parts, path)
    return result


def _cannot(path: str) -> StripeError:
    return StripeError(f"This property cannot be expanded ({path}).", param="expand", saved=False)


def _expand(store: StripeStore, node: Any, parts: list[str], path: str) -> None:
    if not isinstance(node, dict):
        raise _cannot(path)
    key, rest = parts[0], parts[1:]
    if key == "data" and node.get("object") in ("list", "search_result"):
        for item in node["data"]:
            if rest:
                _expand(store, item, rest, path)
        return
    if key not in node:
        raise _cannot(path)
    value = node[key]
    if isinstance(value, str):
        found = resolve(store, value)
        if found is None:
            raise _cannot(path)
        value = node[key] = copy.deepcopy(found)
    if rest and value is not None:
        _expand(store, value, rest, path)


def without_includable(node: Any, paths: list[str] | tuple[str, ...] = ()) -> Any:
    """``node`` with every includable field that ``paths`` (the request's `expand[]`) does
    not name removed, at any depth. Copies only what changes: stored objects are shared."""
    wanted = frozenset(tuple(p.split(".")) for p in paths)
    return _strip(node, wanted, ())


def _strip(node: Any, wanted: frozenset[tuple[str, ...]], prefix: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        items = [_strip(item, wanted, prefix) for item in node]
        return node if all(a is b for a, b in zip(items, node, strict=True)) else items
    if not isinstance(node, dict):
        return node
    drop = {
        field
        for field in INCLUDABLE.get(node.get("object", ""), ())
        if field in node and not any(p[: len(prefix) + 1] == (*prefix, field) for p in wanted)
    }
    out: dict[str, Any] | None = None
    for key, value in node.items():
        if key in drop:
            out = out if out is not None else dict(node)
            del out[key]
            continue
        if isinstance(value, dict | list):
            new = _strip(value, wanted, (*prefix, key))
            if new is not value:
                out = out if out is not None else dict(node)
                out[key] = new
    return node if out is None else out
