"""The incremental pull: closed-won Opportunities changed since the watermark, one query.

    SELECT <deal fields>, Account.<fields>,
           (SELECT <line fields> FROM OpportunityLineItems ORDER BY SortOrder, Id)
    FROM Opportunity
    WHERE IsWon = true AND SystemModstamp >= <watermark - overlap>
          [AND RecordType.DeveloperName IN (...)] [AND (<extra_where>)]
    ORDER BY SystemModstamp, Id

- Streams page by page (``query`` then ``query_more(nextRecordsUrl)``), never
  ``query_all``: each page's records are released as they are yielded, so memory holds
  one page however many deals match.
- Salesforce caps a subquery at about 200 children per parent row and gives that child
  result ``done: false`` and a ``nextRecordsUrl`` of its own, which following the
  top-level ``nextRecordsUrl`` never fetches. Each deal's lines are followed to the end
  before the deal is yielded: a deal with 300 lines arrives whole.
- ``>=`` rather than ``>``: a crash between two deals with the same SystemModstamp must
  not skip the second when the overlap is 0. ``format_soql`` drops milliseconds (it
  truncates, so the bound only moves earlier). Re-read deals are deduplicated here by
  (Id, SystemModstamp) within the pull, and by the engine on revision across runs.
- Cursor: ``<SystemModstamp ISO-8601 UTC, ms>|<Opportunity Id>`` of the last deal, e.g.
  ``2026-11-01T12:00:00.000Z|006000000000001AAA``. It never moves backwards: deals
  re-read from the overlap window carry the cursor the pull started from.

The re-read (`DealPuller.fetch`): the same query, fields, conversion and child-line
pagination, with ``Id IN (...)`` in place of the watermark and no cursor. Ids go in
chunks sized so each GET stays inside Salesforce's request limits: at most
`FETCH_CHUNK_IDS` ids, and the URL-encoded query at most `FETCH_QUERY_URL_BYTES` (the REST
API refuses a URI plus headers over 16,384 bytes with 414/431, well before the
100,000-character SOQL limit; each 18-character id costs 27 bytes encoded).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus, urlencode

from billsync.connectors.salesforce.client import SYSTEM, SalesforceClient
from billsync.connectors.salesforce.convert import (
    DealRejected,
    RecordProblem,
    parse_datetime,
    to_deal,
)
from billsync.connectors.salesforce.fields import (
    ACCOUNT_FIELDS,
    CURRENCY_FIELD,
    LINE_FIELDS,
    LINE_RELATIONSHIP,
    OPPORTUNITY_FIELDS,
    DealFieldPaths,
    lookup,
    unique_paths,
)
from billsync.connectors.salesforce.settings import SalesforceSettings
from billsync.connectors.salesforce.soql import WhereFragmentError, build_pull_query, validate_where
from billsync.core.canonical import Deal
from billsync.core.logs import get_logger
from billsync.core.problems import ConfigError, ConfigProblem
from billsync.core.protocols import Checkpointed, ConnectorError, Cursor, ErrorClass

__all__ = [
    "FETCH_CHUNK_IDS",
    "FETCH_QUERY_URL_BYTES",
    "DealPuller",
    "decode_cursor",
    "encode_cursor",
    "is_salesforce_id",
]

log = get_logger("billsync.salesforce")
Position = tuple[datetime, str]
QueryText = Callable[[bool], str]  # currency -> the SOQL

# At most this many ids per re-read query, and at most this many bytes of URL-encoded
# ``q=<SOQL>``: of the 16,384 bytes allowed for URI plus headers, ~4 KB stay for the rest.
FETCH_CHUNK_IDS = 500
FETCH_QUERY_URL_BYTES = 12_000
_SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def is_salesforce_id(value: object) -> bool:
    """True for the shape of a record id: 15 (case-sensitive) or 18 letters and digits."""
    return isinstance(value, str) and _SALESFORCE_ID.fullmatch(value) is not None


def encode_cursor(position: Position | None) -> Cursor:
    if position is None:
        return ""
    stamp, deal_id = position
    utc = stamp.astimezone(UTC)
    return f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}.{utc.microsecond // 1000:03d}Z|{deal_id}"


def decode_cursor(cursor: Cursor | None) -> Position | None:
    """The position in a cursor from `encode_cursor`; None for None or ''."""
    if not cursor:
        return None
    stamp, sep, deal_id = cursor.partition("|")
    try:
        parsed = parse_datetime(stamp, "cursor") if sep and deal_id else None
    except RecordProblem:
        parsed = None
    if parsed is None:
        raise ConnectorError(
            system=SYSTEM,
            error_class=ErrorClass.INVALID_DATA,
            code="BAD_CURSOR",
            message=(
                f"the stored Salesforce watermark {cursor[:80]!r} is not "
                "'<SystemModstamp>|<Opportunity Id>'; reset the Salesforce watermark"
            ),
        )
    return parsed, deal_id


class DealPuller:
    """Builds the pull query once (validated at construction) and streams deals."""

    def __init__(
        self,
        client: SalesforceClient,
        settings: SalesforceSettings,
        *,
        paths: DealFieldPaths,
        company_currency: str,
        start_from: datetime | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._paths = paths
        self._company_currency = company_currency
        self._batch_size = settings.query_batch_size
        if start_from is not None and start_from.utcoffset() is None:
            raise ValueError("start_from must be timezone-aware (UTC)")
        self._start_from = start_from
        mode = settings.multi_currency
        self._multi_currency: bool | None = None if mode == "auto" else bool(mode)
        try:
            self._extra_where = (
                validate_where(settings.extra_where) if settings.extra_where is not None else None
            )
        except WhereFragmentError as exc:
            raise ConfigError(
                [ConfigProblem("config", "salesforce.extra_where", str(exc))]
            ) from None

    @property
    def multi_currency(self) -> bool | None:
        """Whether the org has CurrencyIsoCode; None until the first query tells (auto)."""
        return self._multi_currency

    def query_text(
        self, since: datetime | None, *, currency: bool, ids: Sequence[str] | None = None
    ) -> str:
        """The pull query; with ``ids``, the re-read of those deals (``since`` is then None)."""
        configured = self._paths.configured().values()
        fields = [
            *OPPORTUNITY_FIELDS,
            *([CURRENCY_FIELD] if currency else []),
            *ACCOUNT_FIELDS,
            *configured,
        ]
        return build_pull_query(
            opportunity_fields=unique_paths(fields),
            line_fields=LINE_FIELDS,
            since=since,
            record_types=self._settings.record_types,
            extra_where=self._extra_where,
            ids=ids,
        )

    def pull(self, since: Cursor | None) -> Iterator[Checkpointed[Deal | DealRejected]]:
        """Deals (or rejections) oldest first, each with the cursor to store after it."""
        floor = decode_cursor(since)
        if floor is not None:
            lower: datetime | None = floor[0] - timedelta(minutes=self._settings.overlap_minutes)
        else:
            lower = self._start_from
        position = floor
        seen_stamp: datetime | None = None
        seen_ids: set[str] = set()
        for record in self._records(lambda currency: self.query_text(lower, currency=currency)):
            item = self._item(record)
            revision = item.revision
            if revision is not None:
                # Dedupe on (Id, SystemModstamp); rows come ordered by stamp, so only the
                # ids at the current stamp need remembering.
                if revision != seen_stamp:
                    seen_stamp, seen_ids = revision, set()
                if _deal_id(item) in seen_ids:
                    continue
                seen_ids.add(_deal_id(item))
                here = (revision, _deal_id(item))
                if position is None or here > position:
                    position = here
            yield Checkpointed(item, encode_cursor(position))

    def fetch(self, ids: Sequence[str]) -> Iterator[Deal | DealRejected]:
        """Re-read these won deals by Id, streamed; absent ids (deleted, no longer won or
        out of the configured scope) are simply not yielded. Ids that are not 15/18-char
        Salesforce ids are skipped with a warning; duplicates are read once."""
        if isinstance(ids, str):  # a str is a Sequence[str] of its characters
            raise TypeError("fetch takes a sequence of ids, not one str")
        wanted = list(dict.fromkeys(ids))
        bad = [value for value in wanted if not is_salesforce_id(value)]
        if bad:
            log.warning(
                "salesforce.fetch_bad_ids",
                count=len(bad),
                ids=[repr(value)[:40] for value in bad[:10]],
                reason="not a 15- or 18-character Salesforce id; skipped",
            )
            wanted = [value for value in wanted if is_salesforce_id(value)]
        for chunk in self._id_chunks(wanted):
            yield from self._fetch_chunk(chunk)

    # --- internals ---------------------------------------------------------------

    def _id_chunks(self, ids: list[str]) -> Iterator[list[str]]:
        """Consecutive slices of ``ids`` whose queries fit `FETCH_QUERY_URL_BYTES`."""
        if not ids:
            return
        # Fixed cost: the query around the id list, measured with the widest id
        # (with currency, the longer form); each id then costs its encoded quotes + comma.
        probe = "0" * 18
        fixed = _encoded_length(self.query_text(None, currency=True, ids=[probe])) - _id_cost(probe)
        start = 0
        while start < len(ids):
            used, end = fixed, start
            while end < len(ids) and end - start < FETCH_CHUNK_IDS:
                cost = _id_cost(ids[end])
                if used + cost > FETCH_QUERY_URL_BYTES and end > start:
                    break
                used, end = used + cost, end + 1
            if used > FETCH_QUERY_URL_BYTES:
                raise ConnectorError(
                    system=SYSTEM,
                    error_class=ErrorClass.INVALID_DATA,
                    code="QUERY_TOO_LONG",
                    message=(
                        f"the Salesforce re-read query is {used} bytes encoded with a single "
                        f"id (limit {FETCH_QUERY_URL_BYTES}); shorten salesforce.extra_where "
                        "or the mapped source fields"
                    ),
                )
            yield ids[start:end]
            start = end

    def _fetch_chunk(self, ids: list[str]) -> Iterator[Deal | DealRejected]:
        for record in self._records(
            lambda currency: self.query_text(None, currency=currency, ids=ids)
        ):
            yield self._item(record)

    def _records(self, query_text: QueryText) -> Iterator[dict[str, Any]]:
        page: dict[str, Any] | None = self._first_page(query_text)
        while page is not None:
            records: list[dict[str, Any]] = page.get("records") or []
            next_url = None if page.get("done", True) else page.get("nextRecordsUrl")
            page = None  # release the page; only its records list lives on, shrinking
            records.reverse()
            while records:
                yield records.pop()
            if next_url:
                page = self._client.query_more(next_url, batch_size=self._batch_size)

    def _first_page(self, query_text: QueryText) -> dict[str, Any]:
        currency = self._multi_currency is not False
        try:
            page = self._client.query(query_text(currency), batch_size=self._batch_size)
        except ConnectorError as exc:
            unknown_currency = (
                exc.code == "INVALID_FIELD"
                and (exc.field or "").rpartition(".")[2].lower() == CURRENCY_FIELD.lower()
            )
            if unknown_currency and self._multi_currency:
                raise ConnectorError(
                    system=SYSTEM,
                    error_class=ErrorClass.INVALID_DATA,
                    code=exc.code,
                    field=CURRENCY_FIELD,
                    message="Salesforce has no CurrencyIsoCode field: the org is not "
                    "multi-currency. Set salesforce.multi_currency to auto or false.",
                ) from None
            if not (self._multi_currency is None and unknown_currency):
                raise
            # auto: this org has no multi-currency; remember it for the client's life.
            log.info("salesforce.single_currency_org", currency=self._company_currency)
            self._multi_currency = False
            return self._client.query(query_text(False), batch_size=self._batch_size)
        self._multi_currency = currency
        return page

    def _item(self, record: Mapping[str, Any]) -> Deal | DealRejected:
        deal_id = str(record.get("Id") or "")
        try:
            revision: datetime | None = parse_datetime(
                record.get("SystemModstamp"), "SystemModstamp"
            )
        except RecordProblem:
            revision = None
        try:
            return to_deal(
                record,
                self._lines(record),  # followed to the end before the deal is yielded
                paths=self._paths,
                multi_currency=bool(self._multi_currency),
                company_currency=self._company_currency,
            )
        except RecordProblem as problem:
            name = record.get("Name")
            return DealRejected(
                deal_id,
                problem.field,
                problem.reason,
                revision,
                name if isinstance(name, str) else None,
            )
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # A shape nobody anticipated must not stop the other deals; log it loudly.
            log.error("salesforce.unexpected_record", deal_id=deal_id, error=repr(exc))
            reason = f"unexpected record shape ({type(exc).__name__}); report it as a bug"
            return DealRejected(deal_id, "Opportunity", reason, revision)

    def _lines(self, record: Mapping[str, Any]) -> list[dict[str, Any]]:
        # No children comes back as null, not as an empty result.
        child = lookup(record, LINE_RELATIONSHIP)
        if not isinstance(child, Mapping):
            return []
        lines: list[dict[str, Any]] = list(child.get("records") or [])
        next_url = None if child.get("done", True) else child.get("nextRecordsUrl")
        while next_url:
            more = self._client.query_more(next_url, batch_size=self._batch_size)
            lines.extend(more.get("records") or [])
            next_url = None if more.get("done", True) else more.get("nextRecordsUrl")
        return lines


def _encoded_length(soql: str) -> int:
    """Bytes of ``q=<soql>`` as simple-salesforce's requests sends it (quote_plus)."""
    return len(urlencode({"q": soql}))


def _id_cost(deal_id: str) -> int:
    """Encoded bytes one id adds to ``IN (...)``: the id, its quotes and a comma."""
    return len(quote_plus(f"'{deal_id}',"))


def _deal_id(item: Deal | DealRejected) -> str:
    return item.id if isinstance(item, Deal) else item.deal_id
