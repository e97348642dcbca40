"""What a reconciliation pass hands back: the report, its parts, and how each reads as
JSON (`billsync reconcile --json`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sync import money
from sync.canonical import Discrepancy, DiscrepancyKind
from sync.ledger.models import Discrepancy as DiscrepancyRow

Key = tuple[str, str | None, str | None]
"""A discrepancy's identity: (kind, deal, target)."""


@dataclass(frozen=True)
class Fixed:
    """Something reconciliation changed or queued."""

    action: str  # ledger_corrected | writeback_queued | payments_applied
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


@dataclass(frozen=True)
class PaymentGap:
    """The target shows more paid or credited on an invoice than the ledger recorded."""

    target: str
    invoice: str
    deal_id: str | None
    currency: str
    ledger_settled: Decimal
    target_settled: Decimal
    fixed: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "invoice": self.invoice,
            "deal_id": self.deal_id,
            "currency": self.currency,
            "ledger_settled": show(self.ledger_settled, self.currency),
            "target_settled": show(self.target_settled, self.currency),
            "fixed": self.fixed,
            "detail": self.detail,
        }


@dataclass
class ReconcileReport:
    """What one pass found and did. Payment gaps are listed here rather than recorded:
    DiscrepancyKind has no kind for "the ledger missed a payment" (yet), and the gap is
    measured afresh on every pass anyway."""

    open: list[Discrepancy] = field(default_factory=list)
    recorded: int = 0
    resolved: list[Key] = field(default_factory=list)
    fixed: list[Fixed] = field(default_factory=list)
    payment_gaps: list[PaymentGap] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    """Per system: what could not be checked (its discrepancies stay as they were)."""
    skipped: list[str] = field(default_factory=list)
    """Checks not done this pass, and why."""
    checked: dict[str, int] = field(default_factory=dict)
    """Invoices read back per target."""

    def error(self, system: str, message: str) -> None:
        self.errors.setdefault(system, []).append(message)

    @property
    def exit_code(self) -> int:
        """1 while anything disagrees or could not be checked, else 0."""
        unfixed = any(not gap.fixed for gap in self.payment_gaps)
        return 1 if (self.open or unfixed or self.errors) else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "open": [d.model_dump(mode="json") for d in self.open],
            "fixed": [f.as_json() for f in self.fixed],
            "errors": self.errors,
            "payment_gaps": [g.as_json() for g in self.payment_gaps],
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
    facts = ", ".join(
        f"{name} {value}"
        for name, value in details.items()
        if value not in (None, "", []) and name != "raw"
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
    )
