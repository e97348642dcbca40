"""What ops advice needs from Stripe: the error table's rows and hints naming the
object. Stripe's own error codes are open-ended, so the rows carry no code and are
matched by their fix text; ``error_rules`` imports stripe-python only when asked.
"""

from __future__ import annotations

from collections.abc import Iterator

from billsync.core.plugins import ErrorHint
from billsync.core.protocols import ErrorRule

__all__ = ["HINTS", "error_rules"]


def error_rules() -> Iterator[tuple[str | None, ErrorRule]]:
    from billsync.connectors.stripe import client

    yield from ((None, rule) for _kind, rule in client.EXCEPTIONS)


HINTS: tuple[ErrorHint, ...] = (
    ErrorHint(
        "resource_missing",
        "a Stripe object the invoice refers to (customer, price or product) does not exist "
        "in this account",
    ),
    ErrorHint(
        "idempotency_error",
        "Stripe saw this deal's idempotency key before with other values",
    ),
)
