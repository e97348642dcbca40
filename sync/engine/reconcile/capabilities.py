"""Optional connector capabilities reconciliation uses when a connector has them.

Checked with ``isinstance`` at run time (the protocols are ``runtime_checkable``); a
connector without one gets the slower path or a "skipped" line in the report.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from billsync.core.canonical import InvoiceRef
from billsync.core.protocols import ConnectorError, Cursor


@runtime_checkable
class WonDealLister(Protocol):
    """A deal source that can list won deal ids cheaply (Salesforce: ``SELECT Id`` only)."""

    def won_deal_ids(self, up_to: Cursor) -> Iterator[str]:
        """Ids of closed-won deals the pull has passed: those the incremental pull
        would not return from ``up_to`` (the stored deals watermark) because they sort
        at or before it, within the source's look-back window (Salesforce:
        ``salesforce.won_check_days``). Deals changed since are the next pull's."""
        ...


@runtime_checkable
class DealStageReader(Protocol):
    """A deal source that can say which of some deals are no longer won."""

    def not_won(self, deal_ids: Sequence[str]) -> Mapping[str, str]:
        """Of these deals, those not closed-won now, each with what it is instead (its
        stage, e.g. "Closed Lost", or "not found" when deleted). Raises ConnectorError."""
        ...


@runtime_checkable
class InvoiceBatchReader(Protocol):
    """A target that reads many invoices per call (QBO: ``Id IN (…)``, 1,000 a query)."""

    def fetch_invoices(
        self, external_ids: Sequence[str]
    ) -> Mapping[str, InvoiceRef | ConnectorError]:
        """One outcome per id; a ConnectorError(not_found) for an id that is gone."""
        ...
