"""Credit notes (basic): reduce what an invoice still asks for, or give money back.

Since 2025-05-28.basil a credit note first reduces the invoice's `amount_remaining`
(and `amount_due`), never below zero: that part is `pre_payment_amount`. The rest,
`post_payment_amount`, must be allocated to `refund_amount` (refunds the latest
payment), `credit_amount` (customer balance) or `out_of_band_amount`; with none given
it goes to the customer balance [?]. An invoice credited down to zero is paid.
"""

from __future__ import annotations

import copy
from decimal import Decimal

from starlette.routing import BaseRoute

from billsync.sandbox.stripe import errors, payment_shapes
from billsync.sandbox.stripe.api import Api, Call, retrieve
from billsync.sandbox.stripe.listing import PAGING, list_object, page
from billsync.sandbox.stripe.money import check_amount, line_amount
from billsync.sandbox.stripe.params import Params, in_range, merge_metadata
from billsync.sandbox.stripe.payments import latest_paid_charge, mark_paid, refund
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Obj, Origin
from billsync.sandbox.stripe.views import invoice as view

CREATE = (
    "amount", "credit_amount", "effective_at", "email_type", "invoice", "lines", "memo",
    "metadata", "out_of_band_amount", "reason", "refund_amount", "refunds", "shipping_cost",
)  # fmt: skip
REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")


def _lines(state: State, inv: Obj, items: list[Params]) -> list[Obj]:
    by_id = {line["id"]: line for line in state.store.lines.get(inv["id"], [])}
    out: list[Obj] = []
    for item in items:
        item.allow(
            (
                "amount",
                "description",
                "invoice_line_item",
                "metadata",
                "quantity",
                "tax_amounts",
                "tax_rates",
                "type",
                "unit_amount",
                "unit_amount_decimal",
            )
        )
        kind = item.enum("type", ("custom_line_item", "invoice_line_item"))
        if kind is None:
            raise errors.missing(item.name("type"))
        metadata = merge_metadata({}, item.metadata())
        if kind == "invoice_line_item":
            line_id = item.str("invoice_line_item", required=True) or ""
            line = by_id.get(line_id)
            if line is None:
                raise errors.no_such(
                    "invoice line item", line_id, item.name("invoice_line_item"), in_path=False
                )
            if item.has("amount"):
                amount = item.int("amount", minimum=0) or 0
            else:
                quantity = item.int("quantity", minimum=1) or line["quantity"]
                amount = line_amount(
                    Decimal(line["amount"]) / Decimal(line["quantity"] or 1), Decimal(quantity)
                )
            out.append(
                payment_shapes.credit_note_line(
                    amount,
                    item.str("description") or line["description"],
                    kind,
                    invoice_line_item=line_id,
                    quantity=item.int("quantity"),
                    metadata=metadata,
                )
            )
        else:
            quantity = item.int("quantity", minimum=0)
            quantity = 1 if quantity is None else quantity
            unit = (
                item.decimal("unit_amount_decimal")
                if item.has("unit_amount_decimal")
                else Decimal(item.int("unit_amount", required=True, minimum=0) or 0)
            )
            assert unit is not None
            amount = line_amount(unit, Decimal(quantity))
            out.append(
                payment_shapes.credit_note_line(
                    amount,
                    item.str("description", required=True),
                    kind,
                    quantity=quantity,
                    unit_amount=int(unit) if unit == unit.to_integral_value() else None,
                    unit_amount_decimal=format(unit.normalize(), "f"),
                    metadata=metadata,
                )
            )
    return out


def create(state: State, params: Params, origin: Origin) -> Obj:
    store = state.store
    params.allow(CREATE)
    for key in ("refunds", "shipping_cost"):
        if params.has(key):
            raise errors.not_emulated(key, "credit notes against specific refunds or shipping")
    invoice_id = params.str("invoice", required=True) or ""
    inv = store.invoices.require(invoice_id, "invoice", in_path=False)
    if inv["status"] in ("draft", "void"):
        raise errors.state(
            f"Credit notes need a finalized invoice; {invoice_id} is {inv['status']}.",
            param="invoice",
        )
    lines = _lines(state, inv, params.items("lines") or [])
    if params.has("amount") and lines:
        raise errors.invalid(
            "amount", "You may only specify one of these parameters: amount, lines."
        )
    if lines:
        total = sum(line["amount"] for line in lines)
    elif params.has("amount"):
        total = params.int("amount", minimum=1) or 0
        lines = [
            payment_shapes.credit_note_line(
                total,
                "Credit",
                "custom_line_item",
                quantity=1,
                unit_amount=total,
                unit_amount_decimal=str(total),
            )
        ]
    else:
        raise errors.missing("amount")
    check_amount(inv["currency"], total, "amount")
    creditable = (
        inv["amount_remaining"] + inv["amount_paid"] - inv["post_payment_credit_notes_amount"]
    )
    if total <= 0 or total > creditable:
        raise errors.invalid(
            "amount",
            f"The credit note amount ({total}) must be between 1 and what the invoice can "
            f"still credit ({creditable}).",
        )
    pre = min(total, inv["amount_remaining"])
    post = total - pre
    refund_amount = params.int("refund_amount", minimum=0) or 0
    credit_amount = params.int("credit_amount", minimum=0)
    out_of_band = params.int("out_of_band_amount", minimum=0) or 0
    if credit_amount is None:
        credit_amount = max(0, post - refund_amount - out_of_band)
    if refund_amount + credit_amount + out_of_band != post:
        raise errors.invalid(
            "refund_amount",
            "The sum of credit amount, refund amount and out of band amount "
            f"({refund_amount + credit_amount + out_of_band}) must equal the credit note "
            f"amount applied after payment ({post}).",
        )
    count = len(store.credit_notes_by_invoice[inv["id"]]) + 1
    note = payment_shapes.credit_note(
        state.now(), inv, f"{inv['number']}-CN-{count:02d}", store.base_url
    )
    note["lines"]["data"] = lines
    note.update(
        amount=total,
        subtotal=total,
        subtotal_excluding_tax=total,
        total=total,
        total_excluding_tax=total,
    )
    note.update(
        pre_payment_amount=pre, post_payment_amount=post, out_of_band_amount=out_of_band or None
    )
    note["type"] = "pre_payment" if not post else ("post_payment" if not pre else "mixed")
    note["reason"] = params.enum("reason", REASONS)
    note["memo"] = params.str("memo")
    note["metadata"] = merge_metadata({}, params.metadata())
    if params.has("effective_at"):
        note["effective_at"] = params.int("effective_at")
    if refund_amount:
        made = refund(state, latest_paid_charge(state, inv), refund_amount, None, {}, origin)
        note["refunds"] = [
            {
                "amount_refunded": refund_amount,
                "payment_record_refund": None,
                "refund": made["id"],
                "type": "refund",
            }
        ]
    customer = store.customers.get(inv["customer"])
    if credit_amount and customer is not None:
        customer["balance"] -= credit_amount
        note["customer_balance_transaction"] = f"cbtxn_{note['id'][3:]}"
    store.credit_notes.add(note)
    store.credit_notes_by_invoice[inv["id"]].append(note["id"])
    before = view(store, inv)
    inv["pre_payment_credit_notes_amount"] += pre
    inv["post_payment_credit_notes_amount"] += post
    inv["amount_due"] -= pre
    inv["amount_remaining"] -= pre
    state.emit("credit_note.created", note, origin)
    if pre and inv["amount_remaining"] == 0 and inv["status"] in ("open", "uncollectible"):
        mark_paid(state, inv, origin)
        state.emit("invoice.paid", view(store, inv), origin, before)
    else:
        state.emit("invoice.updated", view(store, inv), origin, before)
    return note


def void(state: State, note: Obj, origin: Origin) -> Obj:
    store = state.store
    if note["status"] == "void":
        raise errors.state(f"Credit note {note['id']} is already void.")
    if note["refunds"]:
        raise errors.state("A credit note that refunded a payment cannot be voided.")
    inv = store.invoices.by_id[note["invoice"]]
    before_note, before_inv = copy.deepcopy(note), view(store, inv)
    note["status"], note["voided_at"] = "void", state.now()
    pre, post = note["pre_payment_amount"], note["post_payment_amount"]
    inv["pre_payment_credit_notes_amount"] -= pre
    inv["post_payment_credit_notes_amount"] -= post
    inv["amount_due"] += pre
    inv["amount_remaining"] += pre
    customer = store.customers.get(inv["customer"])
    credited = post - (note["out_of_band_amount"] or 0)
    if customer is not None and credited:
        customer["balance"] += credited
    if inv["status"] == "paid" and inv["amount_remaining"] > 0:
        inv["status"] = "open"
        inv["status_transitions"]["paid_at"] = None
    state.emit("credit_note.voided", note, origin, before_note)
    state.emit("invoice.updated", view(store, inv), origin, before_inv)
    return note


def routes(api: Api, state: State) -> list[BaseRoute]:
    store = state.store

    def list_(call: Call) -> Obj:
        params = call.params
        params.allow((*PAGING, "created", "customer", "customer_account", "invoice"))
        customer, invoice_id, created = (
            params.str("customer"),
            params.str("invoice"),
            params.range("created"),
        )

        def match(note_id: str) -> bool:
            note = store.credit_notes.by_id[note_id]
            return (
                (customer is None or note["customer"] == customer)
                and (invoice_id is None or note["invoice"] == invoice_id)
                and in_range(note["created"], created)
            )

        found, more = page(store.credit_notes.newest_first(), params, "credit note", match)
        return list_object([store.credit_notes.by_id[i] for i in found], more, "/v1/credit_notes")

    def void_(call: Call) -> Obj:
        call.params.allow(())
        return void(state, store.credit_notes.require(call.id()), call.origin)

    return [
        api.route("POST", "/v1/credit_notes", lambda call: create(state, call.params, call.origin)),
        api.route("GET", "/v1/credit_notes", list_),
        api.route("GET", "/v1/credit_notes/{id}", retrieve(store.credit_notes)),
        api.route("POST", "/v1/credit_notes/{id}/void", void_),
    ]
