"""What ops advice needs from Salesforce: the error table's rows keyed by the code a
failure is stored with (the REST ``errorCode``, the OAuth error, the exception's class
name in capitals; HTTP-status rows are matched by their fix alone), and hints naming
the object. ``error_rules`` imports the table (and simple-salesforce) only when asked.
"""

from __future__ import annotations

from collections.abc import Iterator

from billsync.core.plugins import ErrorHint
from billsync.core.protocols import ErrorRule

__all__ = ["HINTS", "error_rules"]


def error_rules() -> Iterator[tuple[str | None, ErrorRule]]:
    from billsync.connectors.salesforce import client

    yield from client.ERROR_CODES.items()
    yield from ((None, rule) for rule in client.HTTP_STATUS.values())
    yield from ((kind.__name__.upper(), rule) for kind, rule in client.EXCEPTIONS)


HINTS: tuple[ErrorHint, ...] = (
    ErrorHint(
        "INVALID_FIELD",
        "Salesforce has no field {field} on the opportunity, or the integration user cannot see it",
        (r"No such column '(?P<field>[A-Za-z0-9_.]+)'",),
    ),
    ErrorHint(
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "a validation rule on opportunity {deal_id} rejected the billing fields",
    ),
    ErrorHint("ENTITY_IS_DELETED", "opportunity {deal_id} was deleted in Salesforce"),
    ErrorHint("ENTITY_IS_LOCKED", "opportunity {deal_id} is locked in Salesforce"),
    ErrorHint(
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "a billing picklist on opportunity {deal_id} does not allow the value billsync writes",
    ),
)
