"""Discrepancies for people: list them, acknowledge or resolve one with a note.

The one place the CLI (`billsync discrepancies`), the ops API and the ops page go
through, so all three show the same document and audit the same way (the ledger writes
the audit row in the same transaction as the change).

- **acknowledge**: an operator has seen it and is on it. It stays open, listed and
  re-verified by every reconcile (closed when the facts agree), but no longer makes
  `billsync reconcile` exit 1. The acknowledgement is dropped when the row's amounts
  change: what was acknowledged is no longer what is shown.
- **resolve**: close it by hand (e.g. accepted as is). If the disagreement still holds,
  the next reconcile opens a new row for it.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from billsync.sync.engine.reconcile.report import canonical
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.discrepancies import (
    DiscrepancyClosed,
    DiscrepancyView,
    UnknownDiscrepancy,
)
from billsync.sync.ledger.models import Discrepancy as DiscrepancyRow
from billsync.sync.ops.render import iso

__all__ = [
    "DiscrepancyClosed",
    "DiscrepancyView",
    "UnknownDiscrepancy",
    "acknowledge",
    "discrepancy_json",
    "list_discrepancies",
    "resolve",
]


def discrepancy_json(row: DiscrepancyRow) -> dict[str, Any]:
    """One discrepancy as `billsync reconcile --json` lists it."""
    try:
        shown: dict[str, Any] = canonical(row).model_dump(mode="json")
        return shown
    except ValidationError:
        # A row this version cannot type (e.g. a kind from a newer one): shown as stored.
        return {
            "kind": row.kind,
            "deal_id": row.deal_id,
            "target": row.target,
            "external_id": None,
            "expected": row.expected,
            "actual": row.actual,
            "detail": "",
            "detected_at": iso(row.detected_at),
            "resolved_at": iso(row.resolved_at),
            "id": row.id,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "acknowledged_note": None,
        }


def list_discrepancies(
    ledger: Ledger,
    view: DiscrepancyView = DiscrepancyView.OPEN,
    kind: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    return [
        discrepancy_json(row) for row in ledger.list_discrepancies(view, kind=kind, limit=limit)
    ]


def acknowledge(ledger: Ledger, discrepancy_id: int, actor: str, note: str) -> dict[str, Any]:
    """Raises UnknownDiscrepancy, DiscrepancyClosed, ValueError (empty note)."""
    return discrepancy_json(ledger.acknowledge_discrepancy(discrepancy_id, actor, _note(note)))


def resolve(ledger: Ledger, discrepancy_id: int, actor: str, note: str) -> dict[str, Any]:
    """Raises UnknownDiscrepancy, DiscrepancyClosed, ValueError (empty note)."""
    return discrepancy_json(ledger.resolve_discrepancy_id(discrepancy_id, actor, _note(note)))


def _note(note: str) -> str:
    if not note.strip():
        raise ValueError("a note must say why")
    return note.strip()
