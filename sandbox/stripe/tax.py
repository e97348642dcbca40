"""Taxes (small model): tax rates, invoice default rates, line rates and automatic tax.

Source: docs.stripe.com/tax/invoicing and docs.stripe.com/billing/taxes/tax-rates
(api-facts §5). What is modelled:

- **Tax rates** (`POST/GET /v1/tax_rates`, `GET/POST /v1/tax_rates/{id}`): `display_name`,
  `percentage`, `inclusive` (required), `active`, `country`, `state`, `jurisdiction`,
  `description`, `tax_type`, `metadata`. The percentage cannot change after creation.
- **Which rates apply to a line**: the invoice item's `tax_rates` if it has any, else the
  invoice's `default_tax_rates` ("line-level tax rates override default_tax_rates").
- **Automatic tax** (`automatic_tax[enabled]=true`): Stripe Tax computes from the
  customer's location. The sandbox uses the fixed table `AUTOMATIC` below (country, or
  country and state for the US) — not Stripe's real rates — and 0 with
  `taxability_reason: not_collecting` elsewhere. Without a customer country the status is
  `requires_location_inputs` and finalization fails (`customer_tax_location_invalid`), as
  Stripe's does. Automatic tax and tax rates cannot be combined on one invoice.
- **Amounts**: per line and rate, on the line's amount after discounts; exclusive tax is
  `round_half_up(amount × pct / 100)` and is added (`total = subtotal − discounts + tax`);
  inclusive tax is the part of the amount `round_half_up(amount × pct / (100 + Σ
  inclusive pct))` and leaves `total` alone [?: Stripe's rounding of fractional tax is
  undocumented]. `total_excluding_tax = total − all tax`. Like Stripe, the rate is fixed
  when the invoice is finalized (totals of finalized invoices never change).

Not modelled: tax on credit notes (a credit note's amount is taken as tax-inclusive, with
no `total_taxes`), tax IDs, reverse charge, exemptions, shipping tax, flat-amount rates.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from starlette.routing import BaseRoute

from billsync.sandbox.stripe import errors
from billsync.sandbox.stripe.api import Api, Call, retrieve
from billsync.sandbox.stripe.listing import PAGING, list_object, page
from billsync.sandbox.stripe.money import round_minor
from billsync.sandbox.stripe.params import Params, in_range, merge_metadata
from billsync.sandbox.stripe.state import State
from billsync.sandbox.stripe.store import Obj, Origin, StripeStore
from billsync.sandbox.stripe.wire import new_id

CREATE = (
    "active", "country", "description", "display_name", "inclusive", "jurisdiction",
    "metadata", "percentage", "state", "tax_type",
)  # fmt: skip
UPDATE = (
    "active", "country", "description", "display_name", "jurisdiction", "metadata", "state",
    "tax_type",
)  # fmt: skip
TAX_TYPES = (
    "amusement_tax", "communications_tax", "gst", "hst", "igst", "jct", "lease_tax", "pst",
    "qst", "retail_delivery_fee", "rst", "sales_tax", "service_tax", "vat",
)  # fmt: skip

# The sandbox's fixed automatic-tax table: (country, state or None) -> (name, type, percent).
AUTOMATIC: dict[tuple[str, str | None], tuple[str, str, Decimal]] = {
    ("DE", None): ("VAT", "vat", Decimal("19")),
    ("FR", None): ("VAT", "vat", Decimal("20")),
    ("GB", None): ("VAT", "vat", Decimal("20")),
    ("NL", None): ("VAT", "vat", Decimal("21")),
    ("JP", None): ("JCT", "jct", Decimal("10")),
    ("AU", None): ("GST", "gst", Decimal("10")),
    ("US", "CA"): ("Sales Tax", "sales_tax", Decimal("7.25")),
    ("US", "NY"): ("Sales Tax", "sales_tax", Decimal("8.875")),
}


def shape(tax_rate_id: str, created: int) -> Obj:
    return {
        "id": tax_rate_id,
        "object": "tax_rate",
        "active": True,
        "country": None,
        "created": created,
        "description": None,
        "display_name": "",
        "effective_percentage": None,
        "flat_amount": None,
        "inclusive": False,
        "jurisdiction": None,
        "jurisdiction_level": None,
        "livemode": False,
        "metadata": {},
        "percentage": Decimal(0),
        "rate_type": "percentage",
        "state": None,
        "tax_type": None,
    }


def _apply(rate: Obj, params: Params) -> None:
    for key in ("country", "description", "jurisdiction", "state"):
        if key in params:
            rate[key] = params.str(key)
    if "display_name" in params:
        name = params.str("display_name", max_length=50)
        if not name:
            raise errors.invalid("display_name", "display_name cannot be empty.")
        rate["display_name"] = name
    if "tax_type" in params:
        rate["tax_type"] = params.enum("tax_type", TAX_TYPES)
    if "active" in params:
        rate["active"] = params.bool("active", True)
    rate["metadata"] = merge_metadata(rate["metadata"], params.metadata())


def create_rate(state: State, params: Params, origin: Origin) -> Obj:
    params.allow(CREATE)
    for key in ("display_name", "percentage", "inclusive"):
        if not params.has(key):
            raise errors.missing(key)
    percentage = params.decimal("percentage", minimum=Decimal(0))
    assert percentage is not None
    if percentage > 100:
        raise errors.invalid("percentage", "percentage must be at most 100.")
    rate = shape(new_id("txr_", 24), state.now())
    rate["percentage"] = rate["effective_percentage"] = percentage
    rate["inclusive"] = params.bool("inclusive", False)
    _apply(rate, params)
    state.store.tax_rates.add(rate)
    state.emit("tax_rate.created", rate, origin)
    return rate


def rates(store: StripeStore, params: Params, key: str) -> list[Obj]:
    """Tax rates named by a parameter (ids; `''` clears): each must exist and be active."""
    found: list[Obj] = []
    for index, rate_id in enumerate(params.strings(key, max_items=5)):
        if rate_id == "":
            continue
        rate = store.tax_rates.require(rate_id, f"{params.name(key)}[{index}]", in_path=False)
        if not rate["active"]:
            raise errors.invalid(
                params.name(key), f"Tax rate {rate_id} is inactive and cannot be applied."
            )
        found.append(rate)
    return found


def automatic_rate(store: StripeStore, country: str, region: str | None) -> Obj | None:
    """The sandbox's automatic rate for a location (a tax rate object it keeps, so the
    invoice's `total_taxes` can name it), or None where it collects nothing."""
    key = (country, region) if country == "US" else (country, None)
    entry = AUTOMATIC.get(key)
    if entry is None:
        return None
    name, tax_type, percent = entry
    rate_id = f"txr_auto_{country}{region or ''}".lower()
    rate = store.tax_rates.get(rate_id)
    if rate is None:
        rate = shape(rate_id, store.now())
        rate.update(
            display_name=name,
            tax_type=tax_type,
            percentage=percent,
            effective_percentage=percent,
            country=country,
            state=region if country == "US" else None,
            jurisdiction=region or country,
        )
        store.tax_rates.add(rate)
    return rate


def location(store: StripeStore, inv: Obj) -> tuple[str, str | None] | None:
    """The customer's tax location (country, state), or None when it has no country."""
    customer = store.customers.get(inv["customer"])
    address = (customer or {}).get("address") or {}
    country = address.get("country")
    return (str(country).upper(), address.get("state")) if country else None


def line_taxes(amount: int, applied: list[Obj], reason: str = "standard_rated") -> list[Obj]:
    """The `taxes` of a line whose amount after discounts is ``amount``."""
    inclusive_pct = sum((r["percentage"] for r in applied if r["inclusive"]), Decimal(0))
    out: list[Obj] = []
    inclusive_total = 0
    for rate in applied:
        if rate["inclusive"]:
            tax = round_minor(Decimal(amount) * rate["percentage"] / (100 + inclusive_pct))
            inclusive_total += tax
        else:
            tax = round_minor(Decimal(amount) * rate["percentage"] / 100)
        out.append(
            {
                "amount": tax,
                "tax_behavior": "inclusive" if rate["inclusive"] else "exclusive",
                "tax_rate_details": {"tax_rate": rate["id"]},
                "taxability_reason": reason,
                "taxable_amount": amount,
                "type": "tax_rate_details",
            }
        )
    for entry in out:  # inclusive amounts are taxed on the amount without their tax
        entry["taxable_amount"] = amount - inclusive_total
    return out


def totals(lines_taxes: list[list[Obj]]) -> list[Obj]:
    """The invoice's `total_taxes`: line taxes summed per rate (and behaviour)."""
    summed: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(
        lambda: {"amount": 0, "taxable_amount": 0}
    )
    for taxes in lines_taxes:
        for tax in taxes:
            key = (
                tax["tax_rate_details"]["tax_rate"],
                tax["tax_behavior"],
                tax["taxability_reason"],
            )
            summed[key]["amount"] += tax["amount"]
            summed[key]["taxable_amount"] += tax["taxable_amount"]
    return [
        {
            "amount": value["amount"],
            "tax_behavior": behavior,
            "tax_rate_details": {"tax_rate": rate_id},
            "taxability_reason": reason,
            "taxable_amount": value["taxable_amount"],
            "type": "tax_rate_details",
        }
        for (rate_id, behavior, reason), value in summed.items()
    ]


def routes(api: Api, state: State) -> list[BaseRoute]:
    store = state.store

    def list_(call: Call) -> Obj:
        params = call.params
        params.allow((*PAGING, "active", "created", "inclusive"))
        active = params.bool("active", True) if params.has("active") else None
        inclusive = params.bool("inclusive", False) if params.has("inclusive") else None
        created = params.range("created")

        def match(rate_id: str) -> bool:
            rate = store.tax_rates.by_id[rate_id]
            return (
                (active is None or rate["active"] == active)
                and (inclusive is None or rate["inclusive"] == inclusive)
                and in_range(rate["created"], created)
            )

        found, more = page(store.tax_rates.newest_first(), params, "tax rate", match)
        return list_object([store.tax_rates.by_id[i] for i in found], more, "/v1/tax_rates")

    def update(call: Call) -> Obj:
        call.params.allow(UPDATE)
        rate = store.tax_rates.require(call.id())
        _apply(rate, call.params)
        state.emit("tax_rate.updated", rate, call.origin)
        return rate

    return [
        api.route(
            "POST", "/v1/tax_rates", lambda call: create_rate(state, call.params, call.origin)
        ),
        api.route("GET", "/v1/tax_rates", list_),
        api.route("GET", "/v1/tax_rates/{id}", retrieve(store.tax_rates)),
        api.route("POST", "/v1/tax_rates/{id}", update),
    ]
