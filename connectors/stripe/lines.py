"""Draft lines as `add_lines` entries whose Stripe amounts are exactly the draft's.

Stripe computes a line as ``quantity × unit_amount(_decimal)`` and rounds fractions of a
minor unit in a way it does not document. The draft's line amount is already rounded
(half up, ``money.line_amount``), so if Stripe ever had to round, the invoice total
could differ from ``draft.total`` by a cent per line. Each line is therefore sent in a
form whose product is exact, so Stripe never rounds:

1. ``quantity`` N × ``price_data.unit_amount`` U, when there is no discount, N is a
   whole number, the unit price is a whole minor unit Stripe accepts in the currency,
   and N × U is the line amount. The invoice shows the real quantity and unit price.
2. ``quantity``/``quantity_decimal`` × ``price_data.unit_amount_decimal``, when there is
   no discount and the product is exactly the line amount in minor units (e.g. 2.5 h at
   10.00). Not for three-decimal currencies or ISK, whose unit granularity Stripe
   restricts in ways we cannot verify [?].
3. Otherwise (discounts, inexact products): quantity 1 at ``unit_amount`` = the line
   amount, with quantity, unit price and discount written into the description.
   Discounts are baked in rather than sent as coupons: a coupon would cost an API call
   per distinct percentage and Stripe would round the discount itself.
Negative (credit) lines use ``amount`` directly: prices cannot be negative.

Every line carries ``metadata.billsync_line`` (its index in the draft), which is how a
resumed draft knows which lines an earlier attempt already added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Any

from billsync.connectors.stripe.amounts import (
    MAX_INVOICE_AMOUNT,
    MAX_LINE_AMOUNT,
    THREE_DECIMAL,
    StripeAmountError,
    check_maximum,
    stripe_currency,
    to_stripe_amount,
)
from billsync.core import money
from billsync.core.canonical import InvoiceDraft, InvoiceLine

__all__ = ["LINE_KEY", "MAX_LINES", "LineProblem", "PlannedLine", "plan_lines", "present_lines"]

MAX_LINES = 250  # Stripe: at most 250 invoice items per invoice
LINE_KEY = "billsync_line"
_MAX_PLACES = 12  # unit_amount_decimal and quantity_decimal: at most 12 decimal places
_DESCRIPTION_MAX = 1000
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])


class LineProblem(ValueError):
    """A draft line Stripe cannot bill exactly; ``field`` names it for the operator."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class PlannedLine:
    index: int
    amount: int  # minor units; Stripe's line amount will be exactly this
    params: dict[str, Any]


def plan_lines(draft: InvoiceDraft) -> list[PlannedLine]:
    """All lines of the draft, or LineProblem before anything is sent."""
    if len(draft.lines) > MAX_LINES:
        raise LineProblem(
            "lines",
            f"the deal has {len(draft.lines)} lines; a Stripe invoice holds at most "
            f"{MAX_LINES}. Split the deal or bill it through another target",
        )
    planned = [_line(draft.currency, index, line) for index, line in enumerate(draft.lines)]
    total = to_stripe_amount(draft.total, draft.currency)
    try:
        check_maximum(total, draft.currency, what="the invoice total", maximum=MAX_INVOICE_AMOUNT)
    except StripeAmountError as exc:
        raise LineProblem("total", f"{exc}: split the deal or bill it elsewhere") from None
    assert sum(p.amount for p in planned) == total, "draft total is the sum of its lines"
    return planned


def present_lines(lines: list[Mapping[str, Any]]) -> dict[int, int]:
    """Index -> amount of the lines an earlier attempt added (by ``metadata``)."""
    found: dict[int, int] = {}
    for line in lines:
        marker = (line.get("metadata") or {}).get(LINE_KEY)
        if marker is not None and str(marker).isdigit():
            found[int(marker)] = int(line.get("amount") or 0)
    return found


def _line(currency: str, index: int, line: InvoiceLine) -> PlannedLine:
    code = stripe_currency(currency)
    try:
        amount = to_stripe_amount(line.amount, currency)
        check_maximum(amount, currency, what="the line amount", maximum=MAX_LINE_AMOUNT)
    except ValueError as exc:
        raise LineProblem(f"lines[{index}].amount", str(exc)) from None
    if line.item_ref.startswith("unverified:"):
        raise LineProblem(
            f"lines[{index}].item_ref",
            f"product '{line.item_ref}' was never looked up in Stripe (dry-run catalog)",
        )
    params: dict[str, Any] = {"metadata": _metadata(index, line)}
    if line.service_date is not None:
        stamp = int(datetime.combine(line.service_date, time(0), UTC).timestamp())
        params["period"] = {"start": stamp, "end": stamp}
    if line.tax_rates:
        params["tax_rates"] = list(line.tax_rates)
    label = (line.description or "").strip()
    if amount < 0:
        params.update(amount=amount, description=_describe(label or "Credit", line, code))
        return PlannedLine(index, amount, params)
    price: dict[str, Any] = {"currency": code, "product": line.item_ref}
    exact = _exact_form(line, code, amount)
    if exact is None:
        price["unit_amount"] = amount
        params.update(price_data=price, quantity=1, description=_describe(label, line, code))
    else:
        unit_key, unit, quantity_key, quantity = exact
        price[unit_key] = unit
        params.update(price_data=price, **{quantity_key: quantity})
        if label:
            params["description"] = label[:_DESCRIPTION_MAX]
    return PlannedLine(index, amount, params)


def _exact_form(line: InvoiceLine, code: str, amount: int) -> tuple[str, Any, str, Any] | None:
    if line.discount_percent or line.quantity <= 0:
        return None
    quantity = line.quantity
    whole = quantity == quantity.to_integral_value()
    try:
        unit = to_stripe_amount(line.unit_price, code)
    except ValueError:
        unit = None
    if whole and unit is not None and int(quantity) * unit == amount:
        return "unit_amount", unit, "quantity", int(quantity)
    if code in THREE_DECIMAL or code == "isk":
        return None
    scale = to_stripe_amount(Decimal(1), code)  # 10 ** wire exponent
    try:
        unit_decimal = _EXACT.multiply(line.unit_price, Decimal(scale))
        product = _EXACT.multiply(quantity, unit_decimal)
    except (Inexact, InvalidOperation):
        return None
    if product != amount or _places(unit_decimal) > _MAX_PLACES or _places(quantity) > _MAX_PLACES:
        return None
    unit_text = _plain(unit_decimal)
    if whole:
        return "unit_amount_decimal", unit_text, "quantity", int(quantity)
    return "unit_amount_decimal", unit_text, "quantity_decimal", _plain(quantity)


def _places(value: Decimal) -> int:
    return max(0, -int(value.normalize().as_tuple().exponent))


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _price_text(price: Decimal, code: str) -> str:
    try:
        return format(money.to_currency_precision(price, code.upper()), "f")  # 99.90, not 99.9
    except money.PrecisionError:
        return _plain(price)  # finer than the currency: shown as given


def _describe(label: str, line: InvoiceLine, code: str) -> str:
    detail = f"{_plain(line.quantity)} × {_price_text(line.unit_price, code)} {code.upper()}"
    if line.discount_percent:
        detail += f", less {_plain(line.discount_percent)}%"
    text = f"{label} ({detail})" if label else detail
    return text[:_DESCRIPTION_MAX]


def _metadata(index: int, line: InvoiceLine) -> dict[str, str]:
    meta = {LINE_KEY: str(index)}
    if line.source_line_id:
        meta["billsync_source_line_id"] = line.source_line_id[:500]
    return meta
