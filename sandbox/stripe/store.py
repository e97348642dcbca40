"""All Stripe objects the sandbox holds, by type, in creation order, with indexes.

Objects are stored in Stripe's JSON shape and mutated in place; invoices keep their
lines and payments beside them (`lines`, `payments_by_invoice`) and `render.invoice`
assembles the embedded list objects on the way out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from billsync.sandbox.core import Clock
from billsync.sandbox.stripe.errors import StripeError, no_such

Obj = dict[str, Any]


@dataclass(frozen=True)
class Origin:
    """`event.request`: the API request that caused a change (None for out-of-band ones)."""

    id: str | None = None
    idempotency_key: str | None = None


OUT_OF_BAND = Origin()


class Collection:
    """One object type, by id, in creation order; deletions leave the order untouched."""

    def __init__(self, label: str) -> None:
        self.label = label  # as in Stripe's "No such <label>: 'id'"
        self.by_id: dict[str, Obj] = {}
        self.order: list[str] = []

    def add(self, obj: Obj) -> Obj:
        if obj["id"] in self.by_id:
            raise StripeError(
                f"A {self.label} with id '{obj['id']}' already exists.",
                code="resource_already_exists",
                param="id",
            )
        self.by_id[obj["id"]] = obj
        self.order.append(obj["id"])
        return obj

    def get(self, object_id: str) -> Obj | None:
        return self.by_id.get(object_id)

    def require(self, object_id: str, param: str = "id", *, in_path: bool = True) -> Obj:
        obj = self.by_id.get(object_id)
        if obj is None:
            raise no_such(self.label, object_id, param, in_path=in_path)
        return obj

    def remove(self, object_id: str) -> None:
        self.by_id.pop(object_id, None)

    def newest_first(self) -> list[str]:
        by_id = self.by_id
        return [i for i in reversed(self.order) if i in by_id]

    def values(self) -> list[Obj]:
        return [self.by_id[i] for i in self.order if i in self.by_id]

    def clear(self) -> None:
        self.by_id.clear()
        self.order.clear()

    def __len__(self) -> int:
        return len(self.by_id)


class StripeStore:
    def __init__(self, clock: Clock, base_url: str) -> None:
        self.clock = clock
        self.base_url = base_url
        self.customers = Collection("customer")
        self.products = Collection("product")
        self.prices = Collection("price")
        self.coupons = Collection("coupon")
        self.invoiceitems = Collection("invoiceitem")
        self.invoices = Collection("invoice")
        self.invoice_payments = Collection("invoice payment")
        self.payment_intents = Collection("payment_intent")
        self.charges = Collection("charge")
        self.refunds = Collection("refund")
        self.disputes = Collection("dispute")
        self.credit_notes = Collection("credit note")
        self.tax_rates = Collection("tax rate")
        self.discounts: dict[str, Obj] = {}
        self.deleted_customers: set[str] = set()
        self._index_init()

    def _index_init(self) -> None:
        self.lines: dict[str, list[Obj]] = defaultdict(list)
        self.customers_by_email: dict[str, list[str]] = defaultdict(list)
        self.pending_items: dict[str, list[str]] = defaultdict(list)
        self.payments_by_invoice: dict[str, list[str]] = defaultdict(list)
        self.invoice_by_intent: dict[str, str] = {}
        self.credit_notes_by_invoice: dict[str, list[str]] = defaultdict(list)
        self.invoice_sequence: dict[str, int] = defaultdict(int)

    def collections(self) -> dict[str, Collection]:
        """Snapshot keys (Stripe's URL names) -> collections."""
        return {
            "customers": self.customers,
            "products": self.products,
            "prices": self.prices,
            "coupons": self.coupons,
            "invoiceitems": self.invoiceitems,
            "invoices": self.invoices,
            "invoice_payments": self.invoice_payments,
            "payment_intents": self.payment_intents,
            "charges": self.charges,
            "refunds": self.refunds,
            "disputes": self.disputes,
            "credit_notes": self.credit_notes,
            "tax_rates": self.tax_rates,
        }

    def clear(self) -> None:
        for collection in self.collections().values():
            collection.clear()
        self.discounts.clear()
        self.deleted_customers.clear()
        self._index_init()

    def now(self) -> int:
        """Unix seconds on the sandbox clock (tests move it forward)."""
        return int(self.clock.now().timestamp())

    def customer(self, customer_id: str, param: str = "customer") -> Obj:
        """A live customer named in a parameter (400 when missing or deleted)."""
        found = self.customers.get(customer_id)
        if found is None:
            raise no_such("customer", customer_id, param, in_path=False)
        return found
