"""Optional connector capabilities reconciliation uses when a connector has them.

Checked with ``isinstance`` at run time (the protocols are ``runtime_checkable``); a
connector without one gets the slower path or a "skipped" line in the report.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from connectors.base import ConnectorError, Cursor
from sync.canonical import InvoiceRef, PaymentEvent


@runtime_checkable
class WonDealLister(Protocol):
    """A deal source that can list won deal ids cheaply (Salesforce: ``SELECT Id`` only)."""

    def won_deal_ids(self, up_to: Cursor) -> Iterator[str]:
        """Ids of every closed-won deal the pull has passed: those the incremental pull
        would not return from ``up_to`` (the stored deals watermark) because they sort
        at or before it. Deals changed since are the next pull's, not missing."""
        ...


@runtime_checkable
class InvoiceBatchReader(Protocol):
    """A target that reads many invoices per call (QBO: ``Id IN (…)``, 1,000 a query)."""

    def fetch_invoices(
        self, external_ids: Sequence[str]
    ) -> Mapping[str, InvoiceRef | ConnectorError]:
        """One outcome per id; a ConnectorError(not_found) for an id that is gone."""
        ...


@runtime_checkable
class InvoicePaymentReader(Protocol):
    """A payment feed that reads the money facts of one invoice (Stripe
    ``invoice_payments`` + refunds; QBO the Payments in the invoice's ``LinkedTxn``),
    with the same provider payment ids its events carry, so replays dedupe."""

    def payments_for_invoice(self, external_id: str) -> Sequence[PaymentEvent]: ...
