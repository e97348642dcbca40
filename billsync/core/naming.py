"""A connector's objects under the name of the connection that made them.

A connector's modules build canonical objects naming their connector (its kind);
with several companies of one kind in a deployment each must carry its connection's
name (``qbo_uk``), because that name keys the ledger's rows, the inbox and the
engine's routing. The connector's facade hands every object through `named` on its
way out, so the rule lives in one place and no inner module needs the name.
"""

from __future__ import annotations

from typing import TypeVar

from billsync.core.canonical import (
    Discrepancy,
    InvoiceMoney,
    InvoiceRef,
    PaymentEvent,
    WebhookNotification,
)

__all__ = ["named"]

Named = TypeVar("Named", InvoiceRef, InvoiceMoney, Discrepancy, PaymentEvent, WebhookNotification)


def named(value: Named, connection: str) -> Named:
    """``value`` as ``connection``'s: its ``target`` (invoices, money, discrepancies)
    or ``provider`` (payment events, webhook notifications) set to the connection."""
    key = "provider" if isinstance(value, PaymentEvent | WebhookNotification) else "target"
    current = getattr(value, key)
    if current is None or current == connection:
        return value
    return value.model_copy(update={key: connection})
