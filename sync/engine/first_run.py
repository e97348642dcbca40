"""A safe first run: a ledger that has never run does not bill the source's history.

Connecting billsync to a real org must not invoice every closed-won deal ever. So the
first run needs a start: `--since DATE`, `sync.start_from` (or the connector's own
`<source>.start_from`), or an explicit `--backfill`. Without one it stops before any
write (exit 2) and says how many closed-won deals exist, counted with one cheap query.

The choice is recorded in the ledger (cursor `sync.start`, JSON) the first time, so the
next run starts from the same place even when the first one read no deal and left no
watermark behind; once the source's watermark exists it alone says where to read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from billsync.core.plugins import ConnectorSpec, plugin_problem
from billsync.core.protocols import CountsWonDeals
from billsync.sync.engine.cycle import deals_cursor
from billsync.sync.ledger import Ledger

START_CURSOR = "sync.start"
BACKFILL_FROM = datetime(1970, 1, 1, tzinfo=UTC)
"""`--backfill` reads from here: before any CRM record, and safe to subtract an overlap
from (datetime.min is not)."""


class StartNotChosen(Exception):
    """The ledger has never run and nothing says where to start."""

    def __init__(self, won: int | None) -> None:
        super().__init__(won)
        self.won = won

    def message(self) -> str:
        found = (
            f"{self.won} closed-won deals exist in the source"
            if self.won is not None
            else "the source could not count its closed-won deals"
        )
        return (
            f"this ledger has never run and {found}; a first run would invoice all of them. "
            "Choose where to start: `billsync run --since YYYY-MM-DD` (or sync.start_from "
            "in the config) invoices only deals changed since that date; "
            "`billsync run --backfill` invoices every closed-won deal on purpose. "
            "`billsync plan --since YYYY-MM-DD` shows what either would do."
        )


@dataclass(frozen=True)
class StartChoice:
    """What the operator said about where to start (flags, then configuration)."""

    since: datetime | None = None
    backfill: bool = False
    start_from: datetime | None = None


def resolve_start(
    ledger: Ledger | None,
    source: object,
    choice: StartChoice,
    *,
    source_name: str,
    record: bool = True,
) -> datetime | None:
    """Where this run reads deals from when that is not the stored watermark; None: the
    stored watermark (or the source's own default) applies.

    Raises `StartNotChosen` on a never-run ledger with no choice and closed-won deals
    in the source (an empty source needs no choice: everything in it later is new).
    ``ledger`` None: none exists yet; ``record`` False: decide, write nothing (plan);
    ``source_name``: the source's connection, whose watermark row says it has run.
    """
    cursors: Ledger | _ReadOnly = ledger if record and ledger is not None else _ReadOnly(ledger)
    watermark = deals_cursor(source_name)
    if choice.since is not None:
        _record_first(cursors, watermark, "since", choice.since)
        return choice.since
    if choice.backfill:
        _record_first(cursors, watermark, "backfill", None)
        return BACKFILL_FROM
    if cursors.get_cursor(watermark):
        return None
    recorded = _recorded(cursors)
    if recorded is not None:
        start = recorded.get("from")
        if recorded.get("how") == "backfill":
            return BACKFILL_FROM
        return datetime.fromisoformat(start) if start else choice.start_from
    if choice.start_from is not None:
        _record_first(cursors, watermark, "start_from", choice.start_from)
        return choice.start_from
    won = source.count_won_deals() if isinstance(source, CountsWonDeals) else None
    if won != 0:
        raise StartNotChosen(won)
    _record_first(cursors, watermark, "empty_source", None)
    return None


def watermark_at(start: datetime, source: ConnectorSpec) -> str:
    """The deal source's cursor at ``start`` (a naive time is UTC): every deal changed
    after it is read. Only the source knows its cursor format (``source.cursor_at``); one
    that declares none cannot start at a date, which is a configuration problem."""
    if source.cursor_at is None:
        raise plugin_problem(
            "sync.source",
            f"connector '{source.name}' cannot start reading at a date (its ConnectorSpec "
            "declares no cursor_at): --since, --backfill and sync.start_from need one",
        )
    return source.cursor_at(start.replace(tzinfo=start.tzinfo or UTC))


def recorded_start(ledger: Ledger) -> dict[str, str | None] | None:
    """The first run's recorded choice (for `billsync status` and tests)."""
    return _recorded(ledger)


class _ReadOnly:
    """The cursors of a ledger (or of none yet), with writes dropped."""

    def __init__(self, ledger: Ledger | _ReadOnly | None) -> None:
        self._ledger = ledger

    def get_cursor(self, name: str) -> str | None:
        return self._ledger.get_cursor(name) if self._ledger is not None else None

    def set_cursor(self, name: str, value: str) -> None:
        return None


def _recorded(ledger: Ledger | _ReadOnly) -> dict[str, str | None] | None:
    raw = ledger.get_cursor(START_CURSOR)
    if not raw:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else None


def _record_first(
    ledger: Ledger | _ReadOnly, watermark: str, how: str, start: datetime | None
) -> None:
    """Record the first run's choice once; later choices (a `--since` re-read) are
    per run and leave it alone."""
    if ledger.get_cursor(watermark) or _recorded(ledger) is not None:
        return
    value = {"how": how, "from": start.astimezone(UTC).isoformat() if start else None}
    ledger.set_cursor(START_CURSOR, json.dumps(value))
