"""What a reconciliation pass hands back: the report, its parts, and how each reads as
JSON (`billsync reconcile --json`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billsync.core import money
from billsync.core.canonical import Discrepancy, DiscrepancyKind
from billsync.sync.ledger.discrepancies import ACK
from billsync.sync.ledger.models import Discrepancy as DiscrepancyRow

HIDDEN = frozenset({"raw", "fields", "revision", "invoiced_revision"})
"""Details kept for the machine (closing checks, JSON), not repeated in the detail text."""

Key = tuple[str, str | None, str | None]
"""A discrepancy's identity: (kind, deal, target)."""


@dataclass(frozen=True)
class Fixed:
    """Something reconciliation changed or queued."""

    action: str  # ledger_corrected | money_recorded | writeback_queued | invoice_queued
    deal_id: str | None
    target: str | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "deal_id": self.deal_id,
            "target": self.target,
            "detail": self.detail,
        }


@dataclass
class ReconcileReport:
    """What one pass found and did."""

    open: list[Discrepancy] = field(default_factory=list)
    recorded: int = 0
    resolved: list[Key] = field(default_factory=list)
    fixed: list[Fixed] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    """Per system: what could not be checked (its discrepancies stay as they were)."""
    skipped: list[str] = field(default_factory=list)
    """Checks not done this pass, and why."""
    checked: dict[str, int] = field(default_factory=dict)
    """Invoices read back per target."""

    def error(self, system: str, message: str) -> None:
        self.errors.setdefault(system, []).append(message)

    @property
    def unacknowledged(self) -> list[Discrepancy]:
        return [d for d in self.open if d.acknowledged_at is None]

    @property
    def exit_code(self) -> int:
        """1 while a discrepancy no operator has acknowledged is open, or something
        could not be checked, else 0. Acknowledged rows are still listed (and still
        re-verified); an acknowledgement is dropped when the row's amounts change."""
        return 1 if (self.unacknowledged or self.errors) else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "open": [d.model_dump(mode="json") for d in self.open],
            "fixed": [f.as_json() for f in self.fixed],
            "errors": self.errors,
            "recorded": self.recorded,
            "resolved": [
                {"kind": kind, "deal_id": deal, "target": target}
                for kind, deal, target in self.resolved
            ],
            "skipped": self.skipped,
            "checked": self.checked,
        }


def show(amount: Decimal, currency: str) -> str:
    """An amount as people read it: the currency's places (the ledger hands back 100
    for 100.00)."""
    try:
        return format(money.to_currency_precision(amount, currency), "f")
    except money.MoneyError:
        return format(amount, "f")


def canonical(row: DiscrepancyRow) -> Discrepancy:
    """A stored discrepancy as the report shows it (raises ValidationError if it
    cannot be shown)."""
    details = dict(row.details)
    invoice = details.get("invoice")
    note = details.pop("note", None)
    ack = details.pop(ACK, None)
    ack = ack if isinstance(ack, dict) else {}
    facts = ", ".join(
        f"{name} {value}"
        for name, value in details.items()
        if value not in (None, "", [], {}) and name not in HIDDEN
    )
    detail = "; ".join(part for part in (str(note or ""), facts) if part)
    return Discrepancy(
        kind=DiscrepancyKind(row.kind),
        deal_id=row.deal_id,
        target=row.target,
        external_id=invoice if isinstance(invoice, str) else None,
        expected=row.expected,
        actual=row.actual,
        detail=detail,
        detected_at=row.detected_at,
        resolved_at=row.resolved_at,
        id=row.id or None,
        acknowledged_at=ack.get("at"),
        acknowledged_by=ack.get("by"),
        acknowledged_note=ack.get("note"),
    )
