"""The dry run: which invoices a run would create, and which deals it would reject.

`plan_deals` reads deals from the source and passes each through the mapping layer's
planner. It writes nothing anywhere — no ledger row, no vendor call but the reads — so
`billsync plan` is safe against production.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billsync.core.canonical import Deal, InvoiceDraft
from billsync.core.protocols import ReadRejection
from billsync.mappings.plan import Planned, Planner, Rejected, plan_invoice
from billsync.mappings.rejections import Rejection

DEAL_SOURCE = "the deal source"
"""How operator messages name the source when its connector's label is not at hand."""


def read_rejection(item: ReadRejection, source_label: str) -> Rejection:
    """A deal its source could not read: the fix is in the source, by a person, and
    billsync tries again when the deal changes there."""
    fix = f"correct the record in {source_label}; billsync retries when the deal changes"
    return Rejection(item.deal_id, item.field, item.reason, fix)


def plan_deals(
    items: Iterable[Deal | ReadRejection], planner: Planner, source_label: str = DEAL_SOURCE
) -> Iterator[Planned | Rejected]:
    for item in items:
        if isinstance(item, Deal):
            yield plan_invoice(item, planner)
        else:
            yield Rejected(item.deal_id, None, (read_rejection(item, source_label),))


@dataclass
class PlanReport:
    drafts: list[InvoiceDraft] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def add(self, outcome: Planned | Rejected) -> None:
        if isinstance(outcome, Planned):
            self.drafts.append(outcome.draft)
        else:
            self.rejected.append(outcome)

    @property
    def deals_seen(self) -> int:
        return len(self.drafts) + len(self.rejected)

    def totals(self) -> dict[str, dict[str, str]]:
        """Per target and currency: how much would be invoiced (decimal strings)."""
        sums: dict[str, Counter[str]] = {}
        amounts: dict[tuple[str, str], Decimal] = {}
        for draft in self.drafts:
            key = (draft.target, draft.currency)
            amounts[key] = amounts.get(key, Decimal(0)) + draft.total
            sums.setdefault(draft.target, Counter())[draft.currency] += 1
        return {
            target: {currency: format(amounts[(target, currency)], "f") for currency in counts}
            for target, counts in sums.items()
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "deals_seen": self.deals_seen,
            "invoices_planned": len(self.drafts),
            "rejected": len(self.rejected),
            "totals": self.totals(),
            "drafts": [draft.model_dump(mode="json") for draft in self.drafts],
            "rejections": [
                {
                    "deal_id": problem.deal_id,
                    "target": outcome.target,
                    "field": problem.field,
                    "reason": problem.reason,
                    "fix": problem.fix,
                    "message": problem.message(),
                }
                for outcome in self.rejected
                for problem in outcome.rejections
            ],
        }
