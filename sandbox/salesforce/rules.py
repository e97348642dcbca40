"""What the platform checks and derives when a record is written.

Who writes matters: the API may only touch fields its profile can edit, while the seed
and the admin routes stand in for the org's own automation (price books copying the
product code, data loads keeping their timestamps).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Literal

from billsync.sandbox.salesforce.errors import WriteError
from billsync.sandbox.salesforce.schema import FieldDef, ObjectDef
from billsync.sandbox.salesforce.values import coerce

Source = Literal["api", "admin", "seed"]

# Fields the platform computes; a seed or admin body may carry them (e.g. an export from
# a real org) and they are recomputed instead of refused.
DERIVED = frozenset({"IsWon", "IsClosed", "HasOpportunityLineItem", "IsDeleted"})
SYSTEM_STAMPS = frozenset({"CreatedDate", "LastModifiedDate", "SystemModstamp"})
_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")


def validate_fields(
    definition: ObjectDef, body: dict[str, Any], *, creating: bool, source: Source
) -> dict[str, Any]:
    """Coerced values keyed by canonical field name; raises the API's WriteError."""
    changes: dict[str, Any] = {}
    locked: list[FieldDef] = []
    for key, value in body.items():
        if key == "attributes":
            continue
        field = definition.field(key)
        if field is None:
            raise WriteError(
                "INVALID_FIELD",
                f"No such column '{key}' on sobject of type {definition.name}",
                [],
            )
        if field.name == "Id":
            if creating and source == "api":
                raise WriteError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", []
                )
            continue
        if field.name in DERIVED and source != "api":
            continue
        if field.name in SYSTEM_STAMPS and source == "seed":
            changes[field.name] = coerce(field, value)
            continue
        allowed = field.createable if creating else field.updateable
        if not allowed and (source == "api" or field.name in SYSTEM_STAMPS):
            locked.append(field)
            continue
        changes[field.name] = coerce(field, value)
    currency = changes.get("CurrencyIsoCode")
    if currency is not None and not (
        len(currency) == 3 and currency.isascii() and currency.isalpha() and currency.isupper()
    ):
        raise WriteError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"Currency ISO Code: invalid currency code: {currency}",
            ["CurrencyIsoCode"],
        )
    if locked:
        names = ", ".join(field.name for field in locked)
        raise WriteError(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {names}. Please check the security settings "
            "of this field and verify that it is read/write for your profile or permission set.",
            [field.name for field in locked],
        )
    return changes


def check_required(definition: ObjectDef, merged: dict[str, Any]) -> None:
    missing = [name for name in definition.required if merged.get(name) in (None, "")]
    if missing:
        raise WriteError(
            "REQUIRED_FIELD_MISSING",
            f"Required fields are missing: [{', '.join(missing)}]",
            missing,
        )


def stage_flags(stage: str | None) -> tuple[bool, bool]:
    """(IsWon, IsClosed) for a stage; the default org's stage picklist."""
    if stage == "Closed Won":
        return True, True
    return False, stage == "Closed Lost"


def line_total(quantity: Decimal, unit_price: Decimal, discount: Decimal | None) -> Decimal:
    """Quantity × UnitPrice × (1 − Discount/100), rounded once to the cent, half up."""
    with localcontext() as context:
        context.prec = 60  # exact for any value a currency field can hold
        exact = quantity * unit_price * (_HUNDRED - (discount or 0)) / _HUNDRED
    return exact.quantize(_CENT, rounding=ROUND_HALF_UP)


def unit_price_from_total(quantity: Decimal, total: Decimal, discount: Decimal | None) -> Decimal:
    """When a client sets TotalPrice instead of UnitPrice the platform derives the price."""
    with localcontext() as context:
        context.prec = 60
        factor = quantity * (_HUNDRED - (discount or 0)) / _HUNDRED
        if factor == 0:
            return Decimal("0.00")
        return (total / factor).quantize(_CENT, rounding=ROUND_HALF_UP)


def check_line(changes: dict[str, Any], merged: dict[str, Any], source: Source) -> None:
    """OpportunityLineItem rules that the API enforces before saving."""
    if "UnitPrice" in changes and "TotalPrice" in changes and source == "api":
        raise WriteError(
            "FIELD_INTEGRITY_EXCEPTION",
            "field integrity exception: TotalPrice (cannot specify both UnitPrice and TotalPrice)",
            ["TotalPrice"],
        )
    if merged.get("UnitPrice") is None and merged.get("TotalPrice") is None:
        raise WriteError(
            "REQUIRED_FIELD_MISSING", "Required fields are missing: [UnitPrice]", ["UnitPrice"]
        )
    quantity = merged.get("Quantity")
    if quantity is not None and quantity == 0:
        raise WriteError(
            "FIELD_INTEGRITY_EXCEPTION",
            "field integrity exception: Quantity (quantity must be nonzero)",
            ["Quantity"],
        )
    discount = merged.get("Discount")
    if discount is not None and not 0 <= discount <= _HUNDRED:
        raise WriteError(
            "NUMBER_OUTSIDE_VALID_RANGE",
            f"Discount: value outside of valid range on numeric field: {discount}",
            ["Discount"],
        )


def derive_line(record: dict[str, Any], changes: dict[str, Any]) -> None:
    """Recompute the line's prices after `changes` were merged into `record`."""
    quantity = record["Quantity"]
    discount = record.get("Discount")
    total_only = "TotalPrice" in changes and "UnitPrice" not in changes
    if total_only and record.get("TotalPrice") is not None:
        record["UnitPrice"] = unit_price_from_total(quantity, record["TotalPrice"], discount)
    else:
        record["TotalPrice"] = line_total(quantity, record["UnitPrice"], discount)
    if record.get("ListPrice") is None:
        record["ListPrice"] = record["UnitPrice"]


def derive_opportunity(record: dict[str, Any]) -> None:
    record["IsWon"], record["IsClosed"] = stage_flags(record.get("StageName"))
