"""`GET /cdc?entities=Invoice,Payment&changedSince=...`: what changed, deletions included.

QBO reaches back at most 30 days and returns at most 1,000 objects per call (callers
narrow the window rather than page). Deleted records come back as
`{"Id", "status": "Deleted", "MetaData": {"LastUpdatedTime"}}`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from billsync.sandbox.quickbooks.errors import business, invalid, required
from billsync.sandbox.quickbooks.search import validation_error
from billsync.sandbox.quickbooks.store import BY_LOWER, Realm, Record
from billsync.sandbox.quickbooks.timefmt import parse_moment

MAX_LOOKBACK = timedelta(days=30)
MAX_OBJECTS = 1000


def change_data_capture(
    realm: Realm, now: datetime, entities: str | None, changed_since: str | None
) -> list[dict[str, Any]]:
    """The `CDCResponse` list (one element holding a QueryResponse per entity)."""
    if not entities:
        raise required("entities")
    if not changed_since:
        raise required("changedSince")
    names = []
    for raw in entities.split(","):
        name = BY_LOWER.get(raw.strip().lower())
        if name is None:
            raise validation_error(f"Entity {raw.strip()} is not supported by cdc")
        names.append(name)
    try:
        since = parse_moment(changed_since)
    except ValueError:
        raise invalid(f"Invalid changedSince {changed_since!r}", "changedSince") from None
    if since < now - MAX_LOOKBACK:
        raise business(
            f"Operation cdc with changedSince date {changed_since} which is older than "
            "fixed days is not supported. (the limit is 30 days)",
            "changedSince",
        )
    budget = MAX_OBJECTS
    responses: list[dict[str, Any]] = []
    for name in names:
        changed = [
            (moment, record)
            for record in [*realm.visible(name), *realm.deleted[name].values()]
            if (moment := _updated(record)) >= since
        ]
        changed.sort(key=lambda pair: pair[0])
        taken = [record for _, record in changed[:budget]]
        budget -= len(taken)
        if taken:
            responses.append({name: taken, "startPosition": 1, "maxResults": len(taken)})
        else:
            responses.append({})
    return [{"QueryResponse": responses}]


def _updated(record: Record) -> datetime:
    return parse_moment(record["MetaData"]["LastUpdatedTime"])
