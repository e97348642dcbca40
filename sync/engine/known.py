"""What the ledger knows about a batch of deals, read once when its triage begins.

Triage asks the same questions of every deal (its record in each target, its invoice
work item); asked one deal at a time that is several short transactions per deal.
`KnownDeals` answers them from two reads per batch instead. Once a deal has been
triaged, its own writes (an intent, a needs-attention state) make the batch's answers
stale for it, so a deal met again in the same batch is asked of the ledger directly.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from billsync.sync.engine.failures import INVOICE
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.models import DealRecord, WorkItem


@dataclass
class KnownDeals:
    ledger: Ledger
    records: dict[tuple[str, str], DealRecord]
    invoice_work: dict[str, WorkItem]
    _triaged: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, ledger: Ledger, deal_ids: Collection[str]) -> KnownDeals:
        return cls(ledger, ledger.deals_for(deal_ids), ledger.find_work_for(INVOICE, deal_ids))

    def deal(self, deal_id: str, target: str) -> DealRecord | None:
        if deal_id in self._triaged:
            return self.ledger.get_deal(deal_id, target)
        return self.records.get((deal_id, target))

    def records_of(self, deal_id: str) -> list[DealRecord]:
        """The deal's record in every target the ledger has one for (configured or not:
        an invoice in a target switched off since still counts)."""
        if deal_id in self._triaged:
            return self.ledger.deal_rows(deal_id)
        return [record for (deal, _target), record in self.records.items() if deal == deal_id]

    def work(self, deal_id: str) -> WorkItem | None:
        """The deal's invoice work item, if any."""
        if deal_id in self._triaged:
            return self.ledger.find_work(INVOICE, deal_id)
        return self.invoice_work.get(deal_id)

    def triaged(self, deal_id: str) -> None:
        """From now on the batch's answers for this deal may be stale."""
        self._triaged.add(deal_id)
