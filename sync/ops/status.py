"""`billsync status`: how the sync is doing, from the ledger alone (no vendor calls).

- runs: the last few cycles with their outcome (``None`` while running or after a
  crash) and summary counts;
- run lease: whether a run holds the ledger now;
- queue: work items per status (every status present) and per kind, open failures
  per error class;
- cursors: each feed position with its age (a cursor that stops moving means that
  feed stopped being read);
- inbox: webhook events per status and the lag (age of the oldest unprocessed one);
- discrepancies: open ones per kind;
- connections: each connection in use (the deal source, the targets, any other enabled
  one): name, connector kind and label, enabled, role, its open failures, its cursors,
  whether the last finished run stopped calling it, and a one-word credential health;
- credentials: per connection whose connector declares ``credential_health`` (its
  `ConnectorSpec`), one report per credential it keeps in the ledger (e.g. a company's
  token expiries), each with a ``summary`` line and its ``warnings``. A stored
  credential belongs to the connection of that kind whose section points at its
  account (`ConnectorSpec.account`), else to the connection named after the kind;
- source_quota: the deal source's API allocation as a run last saw it, when a run
  recorded it (`quota_cursor`), else marked unknown.
- customers: target customers linked to two or more accounts (issue 16: a second link
  is an operator's deliberate act; each one is listed so it stays one).

Token values never enter a result: connectors read out only times derived from them.

``warnings`` lists what needs a person; the CLI exits 1 when it is not empty.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from billsync.core.plugins import ConnectorSpec, StoredCredential
from billsync.sync.ledger import Ledger, Run
from billsync.sync.ledger.ops_reads import CursorRow, quota_cursor
from billsync.sync.ops.connections import Connections, from_specs, installed
from billsync.sync.ops.render import age_seconds, iso

RUNS_SHOWN = 5
RUN_LEASE = "run"  # billsync.sync.engine.cycle.RUN_LEASE (not imported: status stays light)
INBOX_LAG_WARNING = timedelta(minutes=15)
RUN_COUNTS = (
    "deals_seen",
    "invoices_created",
    "invoices_adopted",
    "failures",
    "needs_attention",
    "payments_applied",
    "writebacks",
    "discrepancies",
    "retried",
)


@dataclass(frozen=True)
class Status:
    document: dict[str, Any]
    warnings: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {**self.document, "warnings": list(self.warnings)}


def _run(run: Run, now: datetime) -> dict[str, Any]:
    summary = run.summary or {}
    ended = run.finished_at
    duration = summary.get("duration_s")
    return {
        "id": run.id,
        "started_at": iso(run.started_at),
        "finished_at": iso(ended),
        "outcome": run.outcome,
        # The ledger's JSON reads numbers back as Decimal; this one is seconds.
        "duration_s": None if duration is None else float(duration),  # money-ok: seconds
        "counts": {name: summary.get(name) for name in RUN_COUNTS if name in summary},
        "stopped": summary.get("stopped") or {},
        "age_s": age_seconds(ended or run.started_at, now),
    }


def _cursor(row: CursorRow, now: datetime) -> dict[str, Any]:
    value = row.value if len(row.value) <= 80 else row.value[:77] + "..."
    return {
        "name": row.name,
        "value": value,
        "updated_at": iso(row.updated_at),
        "age_s": age_seconds(row.updated_at, now),
    }


def credential_reports(
    ledger: Ledger, known: Connections, now: datetime
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Per connection, the reports of its connector on the credentials it keeps in the
    ledger (JSON), and their warnings, each naming the connection and the account
    ("Ledgerly 9130: …", "Ledgerly (ledgerly_uk) 9131: …"). Every connection in use, and
    each connector's own section, whose connector reports credentials has an entry,
    empty when nothing is stored."""
    shown = {view.name for view in known.in_use()} | set(known.specs)
    reports: dict[str, list[dict[str, Any]]] = {
        name: []
        for name in known.views
        if name in shown
        and (spec := known.spec(name)) is not None
        and spec.credential_health is not None
    }
    warnings: list[str] = []
    for kind, spec in known.specs.items():
        health = spec.credential_health
        if health is None:
            continue
        for row in ledger.credential_rows(health.prefix):
            report = health.report(StoredCredential(row.name, row.data, row.updated_at), now)
            owner = known.owner(kind, report.account)
            named = f"{known.label(owner)} {report.account}"
            facts = {**report.facts, "summary": f"{named}: {report.summary}"}
            reports.setdefault(owner, []).append({**facts, "warnings": list(report.warnings)})
            warnings.extend(f"{named}: {warning}" for warning in report.warnings)
    return reports, warnings


@dataclass(frozen=True)
class CredentialWarnings:
    """`billsync.sync.server.metrics.CredentialSource` over the ledger: per connection
    whose connector reports on its stored credentials, the number of warnings now."""

    ledger: Ledger
    connections: Connections

    def credential_warnings(self, now: datetime) -> dict[str, int]:
        reports, _ = credential_reports(self.ledger, self.connections, now)
        return {
            name: sum(len(report["warnings"]) for report in found)
            for name, found in reports.items()
        }


def _health(reports: list[dict[str, Any]] | None) -> str:
    """One word for a connection's credentials: ``ok``, ``warning``, ``none stored``,
    or ``not reported`` (its connector keeps none in the ledger)."""
    if reports is None:
        return "not reported"
    if not reports:
        return "none stored"
    return "warning" if any(report["warnings"] for report in reports) else "ok"


def connection_rows(
    known: Connections,
    credentials: Mapping[str, list[dict[str, Any]]],
    open_failures: Mapping[str, int],
    cursors: list[dict[str, Any]],
    last_stopped: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """One entry per connection in use: who it is, and what the ledger knows of it."""
    rows = []
    for view in known.in_use():
        mine = [c["name"] for c in cursors if c["name"].startswith(f"{view.name}.")]
        rows.append(
            {
                **view.as_json(),
                "credential_health": _health(credentials.get(view.name)),
                "open_failures": open_failures.get(view.name, 0),
                "cursors": mine,
                "stopped_in_last_run": last_stopped.get(view.name),
            }
        )
    return rows


def source_quota(row: CursorRow | None, now: datetime) -> dict[str, Any]:
    """The deal source's allocation as a run last recorded it, or unknown. It is a
    rolling count the source reports, so the figure is as old as ``recorded_at``."""
    if row is None:
        return {
            "known": False,
            "note": "unknown until a run records it (the ledger holds no quota reading yet)",
        }
    try:
        data = json.loads(row.value)
        used, maximum = data.get("used"), data.get("max")
    except (ValueError, AttributeError):
        return {"known": False, "note": "the recorded quota reading is unreadable"}
    remaining = None if used is None or maximum is None else max(0, int(maximum) - int(used))
    return {
        "known": remaining is not None,
        "used": used,
        "max": maximum,
        "remaining": remaining,
        "floor_percent": data.get("floor_percent"),
        "stopped_by_floor": bool(data.get("stopped")),
        "recorded_at": iso(row.updated_at),
        "age_s": age_seconds(row.updated_at, now),
    }


def build_status(
    ledger: Ledger,
    now: datetime,
    *,
    source: str,
    specs: Mapping[str, ConnectorSpec] | None = None,
    connections: Connections | None = None,
    runs: int = RUNS_SHOWN,
) -> Status:
    """The status document. ``source`` names the deal source (``sync.source``: whose
    API allocation runs record); ``connections`` are the configured connections
    (default: each of ``specs``, else of the installed connectors, the connection
    named after its kind)."""
    warnings: list[str] = []
    recent = [_run(run, now) for run in ledger.recent_runs(runs)]
    lease = ledger.get_lease(RUN_LEASE)
    run_lease = None
    if lease is not None and lease.expires_at > now:
        run_lease = {"holder": lease.holder, "since": iso(lease.acquired_at)}
    elif recent and recent[0]["outcome"] is None:
        warnings.append(f"run {recent[0]['id']} never finished (crashed or was killed)")

    depth = ledger.queue_depth()
    by_class = ledger.failures_by_class()
    if depth.get("dead"):
        warnings.append(
            f"{depth['dead']} failed item(s) wait for an operator: billsync failures list "
            "--status dead"
        )

    cursor_rows = ledger.all_cursors()
    quota_name = quota_cursor(source)
    quota_row = next((row for row in cursor_rows if row.name == quota_name), None)
    cursors = [_cursor(row, now) for row in cursor_rows if row.name != quota_name]

    lag = ledger.inbox_lag(now)
    if lag > INBOX_LAG_WARNING:
        warnings.append(f"webhook events wait {int(lag.total_seconds())} s to be processed")

    open_by_kind = ledger.open_discrepancy_counts()
    if connections is None:
        connections = installed(source) if specs is None else from_specs(specs, source)
    credentials, said = credential_reports(ledger, connections, now)
    warnings.extend(said)
    source_label = connections.label(source)
    finished = next((run for run in recent if run["outcome"] is not None), None)
    listed = connection_rows(
        connections,
        credentials,
        ledger.open_failures_by_connection(),
        cursors,
        finished["stopped"] if finished else {},
    )
    quota = {"system": source, "label": source_label, **source_quota(quota_row, now)}
    if quota.get("stopped_by_floor"):
        warnings.append(f"the last run stopped calling {source_label} at the quota floor")

    shared = [
        {"target": target, "customer_id": customer_id, "accounts": accounts}
        for target, customer_id, accounts in ledger.shared_customers()
    ]
    warnings.extend(
        f"{row['target']} customer {row['customer_id']} is linked to {len(row['accounts'])} "
        f"accounts ({', '.join(row['accounts'])}): check billsync customers list --target "
        f"{row['target']}; unlink the wrong ones"
        for row in shared
    )

    document = {
        "as_of": iso(now),
        "runs": recent,
        "run_lease": run_lease,
        "queue": {
            "by_status": depth,
            "by_kind": ledger.work_depth_by_kind(),
            "open_failures_by_class": by_class,
        },
        "cursors": cursors,
        "inbox": {"lag_s": int(lag.total_seconds()), "by_status": ledger.inbox_counts()},
        "discrepancies": {"open": sum(open_by_kind.values()), "by_kind": open_by_kind},
        "connections": listed,
        "credentials": credentials,
        "source_quota": quota,
        "customers": {"shared": shared},
    }
    return Status(document, tuple(warnings))
