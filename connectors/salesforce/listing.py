"""Cheap id-only reads for reconciliation: which won deals exist, and which deals are no
longer won.

    SELECT Id FROM Opportunity
    WHERE IsWon = true AND SystemModstamp >= <now - won_check_days>
          AND SystemModstamp <= <watermark> [AND <the pull's scope>]
    ORDER BY SystemModstamp, Id

`won_ids` lists the won deals the pull has passed (at or before its watermark) within a
look-back window (``salesforce.won_check_days``, default 30): reconciliation compares
them with the ledger, so a deal whose change became visible only after the pull had
moved past its SystemModstamp (a long transaction committing late, more than the
overlap behind) is still found. Paged like the pull (``query`` then ``query_more``).

`not_won` reads the stage of deals billsync invoiced (``Id IN (...)``, without the
pull's scope: an invoiced deal is compared whatever its record type is now).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from billsync.connectors.salesforce.client import SalesforceClient
from billsync.connectors.salesforce.pull import decode_cursor, is_salesforce_id
from billsync.connectors.salesforce.settings import SalesforceSettings
from billsync.connectors.salesforce.soql import soql_value, validate_where
from billsync.core.protocols import Cursor

__all__ = ["NOT_FOUND", "STAGE_CHUNK_IDS", "DealListing"]

STAGE_CHUNK_IDS = 200
"""Ids per stage query: 200 × 27 encoded bytes stays far inside the URI limit."""
NOT_FOUND = "not found (deleted, or not visible to the integration user)"


class DealListing:
    def __init__(
        self,
        client: SalesforceClient,
        settings: SalesforceSettings,
        now: Callable[[], datetime],
    ) -> None:
        self._client = client
        self._settings = settings
        self._now = now

    def won_query(self, lower: datetime, upper: datetime) -> str:
        conditions = [
            "IsWon = true",
            f"SystemModstamp >= {soql_value(lower)}",
            f"SystemModstamp <= {soql_value(upper)}",
            *self._scope(),
        ]
        return (
            f"SELECT Id FROM Opportunity WHERE {' AND '.join(conditions)} "  # noqa: S608
            "ORDER BY SystemModstamp, Id"
        )

    def count_query(self, before: datetime | None = None) -> str:
        conditions = ["IsWon = true", *self._scope()]
        if before is not None:
            conditions.append(f"SystemModstamp < {soql_value(before)}")
        return f"SELECT COUNT() FROM Opportunity WHERE {' AND '.join(conditions)}"  # noqa: S608

    def won_count(self, before: datetime | None = None) -> int:
        """How many won deals the pull's scope holds (changed before ``before``): one
        COUNT() query, which Salesforce answers in ``totalSize`` with no records."""
        page = self._client.query(self.count_query(before), batch_size=200)
        return int(page.get("totalSize") or 0)

    def _scope(self) -> list[str]:
        """The pull's configured scope: record types and the operator's condition."""
        conditions: list[str] = []
        if self._settings.record_types:
            types = soql_value(list(self._settings.record_types))
            conditions.append(f"RecordType.DeveloperName IN {types}")
        if self._settings.extra_where:
            conditions.append(f"({validate_where(self._settings.extra_where)})")
        return conditions

    def won_ids(self, up_to: Cursor) -> Iterator[str]:
        position = decode_cursor(up_to)
        if position is None:
            return
        lower = self._now() - timedelta(days=self._settings.won_check_days)
        if lower > position[0]:
            return
        for record in self._records(self.won_query(lower, position[0])):
            yield str(record["Id"])

    def not_won(self, deal_ids: Sequence[str]) -> Mapping[str, str]:
        wanted = [i for i in dict.fromkeys(deal_ids) if is_salesforce_id(i)]
        found: dict[str, str] = {}
        for start in range(0, len(wanted), STAGE_CHUNK_IDS):
            chunk = wanted[start : start + STAGE_CHUNK_IDS]
            soql = (
                "SELECT Id, StageName, IsWon FROM Opportunity "  # noqa: S608
                f"WHERE Id IN {soql_value(chunk)}"
            )
            seen: set[str] = set()
            for record in self._records(soql):
                deal_id = str(record["Id"])
                seen.add(deal_id)
                seen.add(deal_id[:15])  # asked with a 15-character id, answered with 18
                if not record.get("IsWon"):
                    found[deal_id if deal_id in chunk else deal_id[:15]] = str(
                        record.get("StageName") or "not won"
                    )
            found.update({i: NOT_FOUND for i in chunk if i not in seen})
        return found

    def _records(self, soql: str) -> Iterator[dict[str, Any]]:
        batch = self._settings.query_batch_size
        page: dict[str, Any] | None = self._client.query(soql, batch_size=batch)
        while page is not None:
            yield from page.get("records") or []
            next_url = None if page.get("done", True) else page.get("nextRecordsUrl")
            page = self._client.query_more(next_url, batch_size=batch) if next_url else None
