"""`SalesforceDealSource`: the `DealSource` the engine uses, wired from settings.

Two ways to read deals:
- `pull()` yields ``Checkpointed[Deal | DealRejected]``: a deal that cannot be
  represented (no account, garbage values) arrives as a `DealRejected` naming the field
  and the reason, so the engine can record a needs-attention failure and go on;
- `fetch_deals(ids)` re-reads given deals by Id (the retry queue; the optional ability
  `FetchesDeals`), same fields and conversion as the pull, no cursor: deals deleted or
  no longer won are simply absent.

And two id-only reads for reconciliation (listing.py): `won_deal_ids(up_to)` and
`not_won(ids)`; and `count_won_deals()` for the first run's safety stop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Self

from billsync.connectors.salesforce.actions import WriteBack
from billsync.connectors.salesforce.client import SYSTEM, Quota, SalesforceClient
from billsync.connectors.salesforce.convert import DealRejected
from billsync.connectors.salesforce.describe import FieldProblem, check_fields
from billsync.connectors.salesforce.fields import DealFieldPaths, WriteBackFields
from billsync.connectors.salesforce.listing import DealListing
from billsync.connectors.salesforce.pull import DealPuller
from billsync.connectors.salesforce.settings import SalesforceSettings
from billsync.core import money
from billsync.core.canonical import Deal, DealWriteBack
from billsync.core.http import VendorSession
from billsync.core.protocols import Checkpointed, ConnectorError, Cursor

__all__ = ["SalesforceDealSource"]


class SalesforceDealSource:
    """Closed-won deals from Salesforce, and the money state written back to them.

    Construction validates everything that can be checked without a call (credentials
    for the chosen flow, the private key file, ``extra_where``, field paths) and raises
    `billsync.core.problems.ConfigError` naming the keys; no network traffic happens until the
    first pull or write-back.

    ``start_from`` (aware datetime): where a pull with no cursor begins; None pulls every
    closed-won deal.
    """

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        company_currency: str,
        field_paths: DealFieldPaths | None = None,
        writeback_fields: WriteBackFields | None = None,
        start_from: datetime | None = None,
        session: VendorSession | None = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        currency = money.normalise_currency(company_currency)
        self._client = SalesforceClient(settings, session=session, now=now, sleep=sleep)
        self._puller = DealPuller(
            self._client,
            settings,
            paths=field_paths or DealFieldPaths(),
            company_currency=currency,
            start_from=start_from,
        )
        self._listing = DealListing(self._client, settings, now or _utcnow)
        self._paths = field_paths or DealFieldPaths()
        self._writeback_fields = writeback_fields or WriteBackFields()
        self._writer = WriteBack(
            self._client,
            writeback_fields or WriteBackFields(),
            batch_size=settings.writeback_batch_size,
            now=now,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def system(self) -> str:
        return SYSTEM

    @property
    def quota(self) -> Quota:
        """Daily API usage as last reported, and whether the quota floor stopped this run."""
        return self._client.quota

    @property
    def client(self) -> SalesforceClient:
        return self._client

    def pull(self, since: Cursor | None) -> Iterator[Checkpointed[Deal | DealRejected]]:
        return self._puller.pull(since)

    def fetch_deals(self, ids: Sequence[str]) -> Iterator[Deal | DealRejected]:
        """Re-read these closed-won deals by Opportunity Id, streamed, in no set order.

        Same fields, child lines (followed past 200), conversion and scope
        (record_types, extra_where) as `pull`. Ids not returned (deleted, no longer won,
        out of scope) are absent from the result. Ids that are not 15/18-character
        Salesforce ids are skipped with a logged warning. Queries go in chunks of at most
        500 ids, kept inside the REST API's URI limit.
        """
        return self._puller.fetch(ids)

    def won_deal_ids(self, up_to: Cursor) -> Iterator[str]:
        """Ids of won deals at or before the pull's watermark ``up_to``, changed within
        ``salesforce.won_check_days`` (reconciliation compares them with the ledger)."""
        return self._listing.won_ids(up_to)

    def check_fields(self) -> list[FieldProblem]:
        """The mapped, standard and write-back fields missing in the org (describe)."""
        return check_fields(self._client, self._paths, self._writeback_fields)

    def count_won_deals(self, before: datetime | None = None) -> int:
        """How many closed-won deals exist in the pull's scope (changed before
        ``before``), with one COUNT() query: what a first run would bill."""
        return self._listing.won_count(before)

    def not_won(self, deal_ids: Sequence[str]) -> Mapping[str, str]:
        """Of these deals, those no longer closed-won, with their stage (or not found)."""
        return self._listing.not_won(deal_ids)

    def write_back(
        self,
        updates: Sequence[DealWriteBack],
        errors: Mapping[str, str] | None = None,
        *,
        previous: Mapping[str, DealWriteBack] | None = None,
    ) -> Mapping[str, ConnectorError]:
        """Write money state (and sync errors) onto the deals; failures by deal id.

        ``errors``: a sync error per deal for Billing_Sync_Error__c (a deal with an error
        and no update gets status Error). ``previous``: what was last written per deal;
        identical deals are not rewritten. Each update carries its Billing Status label.
        """
        return self._writer.write(updates, errors, previous=previous)


def _utcnow() -> datetime:
    return datetime.now(UTC)
