"""Invoice lines and totals: invoice items become lines; totals are integer sums.

A line's amount is `unit_amount_decimal × quantity` rounded to a whole minor unit (an
explicit `amount` is taken as is); discounts come off per line; the invoice's
`subtotal` is the sum of line amounts, `total` subtracts the discounts, `amount_due`
subtracts customer credit applied at finalization and pre-payment credit notes, and
`amount_remaining` what has been paid. Taxes (`tax`) are computed per line after
discounts: exclusive tax is added to `total`, inclusive tax is part of it, and
`total_excluding_tax` leaves both out. Everything is int or Decimal.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from billsync.sandbox.stripe import errors, shapes, tax
from billsync.sandbox.stripe.catalog import create_price
from billsync.sandbox.stripe.errors import StripeError
from billsync.sandbox.stripe.money import check_amount, line_amount, percent_of, round_minor
from billsync.sandbox.stripe.params import Params, merge_metadata
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Obj, Origin, StripeStore
from billsync.sandbox.stripe.wire import decimal_text, new_id

MAX_LINES = 250  # Stripe: at most 250 invoice items per invoice


def _quantity(params: Params) -> Decimal:
    if params.has("quantity") and params.has("quantity_decimal"):
        raise errors.invalid(
            params.name("quantity"),
            "You may only specify one of these parameters: quantity, quantity_decimal.",
        )
    if params.has("quantity_decimal"):
        value = params.decimal("quantity_decimal", minimum=Decimal(0))
        assert value is not None
        return value
    quantity = params.int("quantity", minimum=0)
    return Decimal(1 if quantity is None else quantity)


@dataclass
class PendingItem:
    """A validated invoice item whose side objects (inline price, discounts) are made
    only when every line of the request validated: Stripe requests are all or nothing."""

    item: Obj
    price_data: Params | None
    coupons: list[str]


def _existing_price(state: State, params: Params) -> Obj | None:
    pricing = params.sub("pricing")
    if pricing is None:
        return None
    if params.sub("price_data") is not None:
        raise errors.invalid(
            params.name("price_data"),
            "You may only specify one of these parameters: pricing, price_data.",
        )
    pricing.allow(("price",))
    price_id = pricing.str("price", required=True)
    assert price_id is not None
    price = state.store.prices.require(price_id, pricing.name("price"), in_path=False)
    if not price["active"]:
        raise errors.invalid(
            pricing.name("price"),
            f"The price specified ({price_id}) is inactive. This field only accepts active prices.",
        )
    if price["type"] != "one_time":
        raise errors.invalid(
            pricing.name("price"),
            f"The price specified ({price_id}) is recurring; invoice items take one-time prices.",
        )
    return price


def _inline_unit(state: State, data: Params) -> tuple[str, Decimal]:
    """Currency and unit amount of a `price_data`, checked before anything is created."""
    data.allow(
        (
            "currency",
            "product",
            "product_data",
            "tax_behavior",
            "unit_amount",
            "unit_amount_decimal",
        )
    )
    currency = data.currency("currency", required=True)
    assert currency is not None
    if data.has("product") == data.has("product_data"):
        raise errors.invalid(
            data.name("product"), "You must specify exactly one of product or product_data."
        )
    if data.has("product"):
        state.store.products.require(data.str("product") or "", data.name("product"), in_path=False)
    else:
        sub = data.sub("product_data")
        assert sub is not None
        sub.str("name", required=True)
    if data.has("unit_amount") == data.has("unit_amount_decimal"):
        raise errors.invalid(
            data.name("unit_amount"),
            "You must specify exactly one of unit_amount or unit_amount_decimal.",
        )
    if data.has("unit_amount"):
        return currency, Decimal(data.int("unit_amount", minimum=0) or 0)
    return currency, data.decimal("unit_amount_decimal", minimum=Decimal(0)) or Decimal(0)


def build_item(state: State, params: Params, customer: Obj, inv: Obj | None) -> PendingItem:
    """Validate an invoice item from `POST /v1/invoiceitems` or one `add_lines` entry."""
    if params.has("tax_amounts"):
        raise errors.not_emulated(params.name("tax_amounts"), "manual tax amounts")
    item_rates = tax.rates(state.store, params, "tax_rates") if params.has("tax_rates") else []
    if item_rates and inv is not None and inv["automatic_tax"]["enabled"]:
        raise errors.invalid(
            params.name("tax_rates"),
            "You cannot set tax rates on an invoice item of an invoice with automatic tax enabled.",
        )
    for key in ("subscription", "customer_account"):
        if params.has(key):
            raise errors.not_emulated(params.name(key), "subscriptions and customer accounts")
    price = _existing_price(state, params)
    price_data = params.sub("price_data")
    sources = [name for name in ("amount", "unit_amount_decimal") if params.has(name)]
    sources += ["pricing"] if price is not None else []
    sources += ["price_data"] if price_data is not None else []
    if len(sources) > 1:
        raise errors.invalid(
            params.name(sources[1]),
            f"You may only specify one of these parameters: {', '.join(sources)}.",
        )
    if not sources:
        raise StripeError(
            "You must specify one of pricing[price], price_data, amount or unit_amount_decimal.",
            code="parameter_missing",
            param=params.name("amount"),
            saved=False,
        )
    currency: str | None
    if price is not None:
        currency, unit = price["currency"], Decimal(price["unit_amount_decimal"])
    elif price_data is not None:
        currency, unit = _inline_unit(state, price_data)
    else:
        currency = (
            params.currency("currency") or (inv or {}).get("currency") or customer["currency"]
        )
        unit = params.decimal("unit_amount_decimal") or Decimal(0)
    if currency is None:
        raise errors.missing(params.name("currency"))
    if inv is not None and currency != inv["currency"]:
        raise errors.invalid(
            params.name("currency"),
            f"The currency of the line item ({currency}) must match the currency of the "
            f"invoice ({inv['currency']}).",
        )
    quantity = _quantity(params)
    if params.has("amount"):
        if quantity != 1:
            raise errors.invalid(
                params.name("quantity"),
                "When amount is given, quantity must be 1; give unit_amount_decimal instead.",
            )
        amount = params.int("amount")
        assert amount is not None
        unit = Decimal(amount)
    else:
        amount = line_amount(unit, quantity)
    check_amount(currency, amount, params.name("amount"))
    now = state.now()
    item = shapes.invoice_item(new_id("ii_", 24), now, customer["id"], currency)
    item["amount"] = amount
    item["quantity_decimal"] = decimal_text(quantity)
    # [?] Stripe's integer `quantity` for a fractional quantity_decimal: rounded half up.
    item["quantity"] = round_minor(quantity)
    item["pricing"] = shapes.pricing(price, decimal_text(unit))
    product = state.store.products.get(price["product"]) if price else None
    item["description"] = params.str("description") or (product["name"] if product else None)
    item["discountable"] = params.bool("discountable", amount >= 0)
    item["tax_rates"] = item_rates
    item["metadata"] = merge_metadata({}, params.metadata())
    period = params.sub("period")
    if period is not None:
        period.allow(("end", "start"))
        start, end = period.int("start", required=True), period.int("end", required=True)
        if start is None or end is None or end < start:
            raise errors.invalid(
                period.name("end"), "The period end must be greater than or equal to the start."
            )
        item["period"] = {"end": end, "start": start}
    return PendingItem(item, price_data, _coupons(state, params, item))


def _coupons(state: State, params: Params, item: Obj) -> list[str]:
    entries = params.items("discounts", max_items=20) or []
    coupons = []
    for entry in entries:
        entry.allow(("coupon", "discount", "promotion_code"))
        if entry.has("discount") or entry.has("promotion_code"):
            raise errors.not_emulated(
                entry.name("promotion_code"), "promotion codes or reused discounts"
            )
        coupon_id = entry.str("coupon", required=True)
        assert coupon_id is not None
        coupon = state.store.coupons.require(coupon_id, entry.name("coupon"), in_path=False)
        if coupon["amount_off"] is not None and coupon["currency"] != item["currency"]:
            raise errors.invalid(
                entry.name("coupon"),
                f"Coupon {coupon_id} is in {coupon['currency']}, the line in {item['currency']}.",
            )
        if not item["discountable"]:
            raise errors.invalid(
                entry.name("coupon"), "Discounts cannot apply to a line that is not discountable."
            )
        coupons.append(coupon_id)
    return coupons


def commit(state: State, pending: PendingItem, origin: Origin) -> Obj:
    """Create the inline price and the discounts, store the item."""
    item = pending.item
    if pending.price_data is not None:
        price = create_price(state, pending.price_data, origin)
        price["active"] = False  # inline prices are archived at once, as Stripe does
        item["pricing"] = shapes.pricing(price, item["pricing"]["unit_amount_decimal"])
        product = state.store.products.get(price["product"])
        if item["description"] is None and product is not None:
            item["description"] = product["name"]
    for coupon_id in pending.coupons:
        discount = shapes.discount(state.now(), coupon_id, item["customer"], item["id"])
        state.store.discounts[discount["id"]] = discount
        state.store.coupons.by_id[coupon_id]["times_redeemed"] += 1
        item["discounts"].append(discount["id"])
    state.store.invoiceitems.add(item)
    return item


def attach(store: StripeStore, inv: Obj, item: Obj) -> Obj:
    """Put an invoice item on a draft invoice as a line; totals are recomputed by the caller."""
    lines = store.lines[inv["id"]]
    if len(lines) >= MAX_LINES:
        raise StripeError(
            f"Invoices can have at most {MAX_LINES} line items; {inv['id']} is full.",
            param="lines",
            code="invoice_line_item_limit_exceeded",
        )
    item["invoice"] = inv["id"]
    for discount_id in item["discounts"]:
        store.discounts[discount_id]["invoice"] = inv["id"]
    line = shapes.line_item(item, inv["id"])
    lines.append(line)
    return line


def _line_discounts(store: StripeStore, line: Obj) -> list[Obj]:
    remaining = line["amount"]
    out = []
    for discount_id in line["discounts"]:
        coupon = store.coupons.by_id.get(store.discounts[discount_id]["source"]["coupon"])
        if coupon is None or remaining <= 0:
            off = 0
        elif coupon["percent_off"] is not None:
            off = min(remaining, percent_of(line["amount"], coupon["percent_off"]))
        else:
            off = min(remaining, coupon["amount_off"])
        remaining -= off
        out.append({"amount": off, "discount": discount_id})
    return out


def _tax_plan(store: StripeStore, inv: Obj) -> list[Obj] | None:
    """The rates automatic tax applies to every line (None: rates come from the lines
    and the invoice's defaults). Sets `automatic_tax.status`."""
    auto = inv["automatic_tax"]
    if not auto["enabled"]:
        return None
    where = tax.location(store, inv)
    auto["status"] = "requires_location_inputs" if where is None else "complete"
    found = tax.automatic_rate(store, *where) if where is not None else None
    return [found] if found is not None else []


def recompute(store: StripeStore, inv: Obj) -> None:
    """Totals of a draft invoice (finalized invoices' amounts are frozen)."""
    subtotal = exclusive = inclusive = 0
    by_discount: dict[str, int] = defaultdict(int)
    automatic = _tax_plan(store, inv)
    all_taxes: list[list[Obj]] = []
    for line in store.lines.get(inv["id"], []):
        amounts = _line_discounts(store, line)
        line["discount_amounts"] = amounts
        line["pretax_credit_amounts"] = [
            {
                "amount": a["amount"],
                "credit_balance_transaction": None,
                "discount": a["discount"],
                "type": "discount",
            }
            for a in amounts
        ]
        item = store.invoiceitems.by_id.get(line["parent"]["invoice_item_details"]["invoice_item"])
        net = line["amount"] - sum(a["amount"] for a in amounts)
        if item is not None:
            item["net_amount"] = net
        applied = automatic
        if applied is None:
            applied = (item or {}).get("tax_rates") or inv["default_tax_rates"]
        line["taxes"] = tax.line_taxes(net, applied)
        all_taxes.append(line["taxes"])
        for entry in line["taxes"]:
            if entry["tax_behavior"] == "inclusive":
                inclusive += entry["amount"]
            else:
                exclusive += entry["amount"]
        subtotal += line["amount"]
        for entry in amounts:
            by_discount[entry["discount"]] += entry["amount"]
    discounts = sum(by_discount.values())
    inv["subtotal"] = subtotal
    inv["subtotal_excluding_tax"] = subtotal - inclusive
    inv["total"] = subtotal - discounts + exclusive
    inv["total_excluding_tax"] = subtotal - discounts - inclusive
    inv["total_taxes"] = tax.totals(all_taxes)
    inv["total_discount_amounts"] = [{"amount": v, "discount": k} for k, v in by_discount.items()]
    inv["total_pretax_credit_amounts"] = [
        {"amount": v, "credit_balance_transaction": None, "discount": k, "type": "discount"}
        for k, v in by_discount.items()
    ]
    inv["amount_due"] = max(0, inv["total"])
    inv["amount_remaining"] = inv["amount_due"] - inv["amount_paid"]


def apply_customer_credit(store: StripeStore, inv: Obj) -> None:
    """At finalization a negative customer balance (credit) pays what it can."""
    customer = store.customers.get(inv["customer"])
    balance = customer["balance"] if customer else 0
    inv["starting_balance"] = balance
    applied = min(-balance, inv["amount_due"]) if balance < 0 else 0
    if customer is not None and applied:
        customer["balance"] = balance + applied
    inv["ending_balance"] = balance + applied
    inv["amount_due"] -= applied
    inv["amount_remaining"] = inv["amount_due"] - inv["amount_paid"]


def assign_number(store: StripeStore, inv: Obj) -> None:
    """`ABCD1234-0001`: the customer's invoice prefix and its next sequence number."""
    if inv["number"]:
        return
    customer = store.customers.get(inv["customer"])
    if customer is None:
        store.invoice_sequence[inv["customer"]] += 1
        inv["number"] = f"DELETED-{store.invoice_sequence[inv['customer']]:04d}"
        return
    sequence = customer["next_invoice_sequence"]
    customer["next_invoice_sequence"] = sequence + 1
    inv["number"] = f"{customer['invoice_prefix']}-{sequence:04d}"
