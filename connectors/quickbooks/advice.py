"""What ops advice needs from QuickBooks: the error table's rows keyed by the code a
failure is stored with, and hints naming the object a fault is about.

Stored codes: the Fault code (``610``), ``HTTP_<status>`` when the body named none, the
OAuth error (``invalid_grant``) and the exception's class name. ``error_rules`` imports
the table (and so python-quickbooks) only when advice is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator

from billsync.core.plugins import ErrorHint
from billsync.core.protocols import ErrorRule

__all__ = ["HINTS", "error_rules"]


def error_rules() -> Iterator[tuple[str | None, ErrorRule]]:
    from billsync.connectors.quickbooks import errors

    yield from ((str(code), rule) for code, rule in errors.FAULT_CODES.items())
    yield from ((f"HTTP_{status}", rule) for status, rule in errors.HTTP_STATUS.items())
    yield from errors.OAUTH_ERRORS.items()
    yield from ((kind.__name__, rule) for kind, rule in errors.EXCEPTIONS)


# Fault 610's Detail names the entity ("Item assigned to this transaction") and, when
# QuickBooks knows it, the record ("restore SKU-9 (deleted)").
_ENTITY = r"(?P<entity>Item|Customer|Term|Account|TaxCode|Tax Code|Class|Department)"

HINTS: tuple[ErrorHint, ...] = (
    ErrorHint(
        "610",
        "QuickBooks {entity_lower} '{name}' is inactive or deleted",
        (rf"{_ENTITY} assigned to this transaction", r"restore (?P<name>.+?) \(deleted\)"),
        "if it is a product, map it to an active item under products.quickbooks.map in "
        "your mapping file",
    ),
    ErrorHint(
        "610",
        "an item, customer or term the invoice uses is inactive or deleted in QuickBooks",
    ),
    ErrorHint(
        "6240",
        "the name '{customer}' is already used by another QuickBooks customer, vendor or employee",
        also="or set quickbooks.duplicate_name_strategy: account_number",
    ),
    ErrorHint(
        "6140",
        "invoice number (DocNumber) '{doc_number}' is already used by another QuickBooks invoice",
    ),
    ErrorHint("6210", "the invoice date {issue_date} is in a closed books period"),
    ErrorHint("2050", "a value on the invoice is longer than QuickBooks allows"),
    ErrorHint("6000", "QuickBooks refused the invoice's amounts or lines"),
)
