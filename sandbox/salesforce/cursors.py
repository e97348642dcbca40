"""Query pages and the server-side cursors behind `nextRecordsUrl`.

Salesforce quirks kept here:
- Child rows count toward the batch size, so a page of deals with many lines holds
  fewer deals (a page always holds at least one parent).
- A parent whose subquery matches more than 200 children (configurable) gets only the
  first 200, `done: false` and a `nextRecordsUrl` of its own for the rest; following
  the top-level `nextRecordsUrl` never fetches them.
- Subqueries with no matching children come back as `null`, not as an empty result.
- A locator is dropped after 15 minutes without use (INVALID_QUERY_LOCATOR), and a
  user holds at most 10 open query cursors: opening an 11th releases the oldest.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from billsync.sandbox.core import Clock
from billsync.sandbox.salesforce import ids
from billsync.sandbox.salesforce.errors import SalesforceError
from billsync.sandbox.salesforce.soql_engine import (
    ChildPlan,
    ChildResult,
    Plan,
    Projection,
    Record,
    child_rows,
    render_row,
)
from billsync.sandbox.salesforce.store import Store

CHILD_PAGE = 200
DEFAULT_BATCH = 2000
MIN_BATCH = 200
CURSOR_TTL = timedelta(minutes=15)
MAX_OPEN_CURSORS = 10


@dataclass
class QueryCursor:
    plan: Plan
    rows: list[Record]
    batch_size: int
    deleted: bool
    version: str
    endpoint: str
    last_used: datetime


@dataclass
class ChildCursor:
    projection: Projection
    rows: list[Record]
    batch_size: int
    version: str
    endpoint: str
    last_used: datetime


def batch_size(header: str | None) -> int:
    """`Sforce-Query-Options: batchSize=N`, held between 200 and 2000."""
    for option in (header or "").split(","):
        name, _, value = option.partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(MIN_BATCH, min(DEFAULT_BATCH, int(value.strip())))
    return DEFAULT_BATCH


class Cursors:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        child_page: int = CHILD_PAGE,
        max_open: int = MAX_OPEN_CURSORS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.child_page = child_page
        self.max_open = max_open
        self._locators = ids.IdFactory()
        self._queries: OrderedDict[str, QueryCursor] = OrderedDict()
        self._children: dict[str, ChildCursor] = {}

    def reset(self) -> None:
        self._queries.clear()
        self._children.clear()

    def first_page(self, cursor: QueryCursor) -> dict[str, Any]:
        self._expire()
        if cursor.plan.count_only:
            return {"totalSize": len(cursor.rows), "done": True, "records": []}
        locator = self._locators.new(ids.PREFIXES["QueryLocator"])
        page = self._query_page(locator, cursor, 0)
        if not page["done"]:
            self._queries[locator] = cursor
            while len(self._queries) > self.max_open:
                self._queries.popitem(last=False)
        return page

    def next_page(self, locator: str) -> dict[str, Any]:
        """GET of a `nextRecordsUrl`: `<locator>-<position>`."""
        self._expire()
        key, _, position_text = locator.partition("-")
        if not position_text.isdigit():
            raise _invalid_locator()
        position = int(position_text)
        cursor = self._queries.get(key)
        if cursor is not None and position <= len(cursor.rows):
            cursor.last_used = self.clock.now()
            return self._query_page(key, cursor, position)
        child = self._children.get(key)
        if child is not None and position <= len(child.rows):
            child.last_used = self.clock.now()
            return self._child_page(key, child, position, child.batch_size)
        raise _invalid_locator()

    def _query_page(self, locator: str, cursor: QueryCursor, start: int) -> dict[str, Any]:
        children = cursor.plan.projection.children
        records: list[dict[str, Any]] = []
        used = 0
        index = start
        while index < len(cursor.rows):
            parent = cursor.rows[index]
            matched = {
                key: self._children_of(child, parent, cursor.deleted)
                for key, child in children.items()
            }
            cost = 1 + sum(min(len(rows), self.child_page) for rows in matched.values())
            if records and used + cost > cursor.batch_size:
                break
            used += cost
            nested = self._nested_results(matched, cursor)
            records.append(
                render_row(
                    cursor.plan.projection, parent, cursor.version, self.store.tables, nested
                )
            )
            index += 1
        page: dict[str, Any] = {"totalSize": len(cursor.rows), "done": index >= len(cursor.rows)}
        if not page["done"]:
            page["nextRecordsUrl"] = self._url(cursor.version, cursor.endpoint, locator, index)
        page["records"] = records
        return page

    def _children_of(self, child: ChildPlan, parent: Record, deleted: bool) -> list[Record]:
        candidates = self.store.children(child.relationship, parent["Id"], deleted=deleted)
        return child_rows(self.store.schema, child, candidates, self.store.tables)

    def _nested_results(self, matched: dict[str, list[Record]], cursor: QueryCursor) -> ChildResult:
        children = cursor.plan.projection.children

        def result(key: str, _parent: Record) -> Any:
            return self._nested(children[key], matched[key], cursor)

        return result

    def _nested(self, child: ChildPlan, rows: list[Record], cursor: QueryCursor) -> Any:
        if not rows:
            return None
        if len(rows) <= self.child_page:
            return self._render_children(child.projection, rows, len(rows), True, cursor.version)
        locator = self._locators.new(ids.PREFIXES["QueryLocator"])
        self._children[locator] = ChildCursor(
            child.projection,
            rows,
            cursor.batch_size,
            cursor.version,
            cursor.endpoint,
            self.clock.now(),
        )
        return self._child_page(locator, self._children[locator], 0, self.child_page)

    def _child_page(
        self, locator: str, cursor: ChildCursor, start: int, size: int
    ) -> dict[str, Any]:
        end = start + size
        page = self._render_children(
            cursor.projection,
            cursor.rows[start:end],
            len(cursor.rows),
            end >= len(cursor.rows),
            cursor.version,
        )
        if not page["done"]:
            records = page.pop("records")
            page["nextRecordsUrl"] = self._url(cursor.version, cursor.endpoint, locator, end)
            page["records"] = records
        return page

    def _render_children(
        self, projection: Projection, rows: list[Record], total: int, done: bool, version: str
    ) -> dict[str, Any]:
        return {
            "totalSize": total,
            "done": done,
            "records": [render_row(projection, row, version, self.store.tables) for row in rows],
        }

    @staticmethod
    def _url(version: str, endpoint: str, locator: str, position: int) -> str:
        return f"/services/data/v{version}/{endpoint}/{locator}-{position}"

    def _expire(self) -> None:
        horizon = self.clock.now() - CURSOR_TTL
        for table in (self._queries, self._children):
            stale = [key for key, cursor in table.items() if cursor.last_used < horizon]
            for key in stale:
                del table[key]


def _invalid_locator() -> SalesforceError:
    return SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
