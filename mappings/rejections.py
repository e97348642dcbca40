"""Why a deal cannot be invoiced: deal, field, reason and fix, for people to act on."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rejection:
    deal_id: str
    field: str
    """Where the problem is, in the deal source's terms when the fix is there
    (e.g. `OpportunityLineItem[2] 00k….ProductCode`)."""
    reason: str
    fix: str

    def message(self) -> str:
        return f"deal {self.deal_id}: {self.field}: {self.reason} — {self.fix}"


@dataclass
class Rejections:
    """Collects every problem of one deal, so one run reports them all at once."""

    deal_id: str
    _items: list[Rejection] = field(default_factory=list)

    def add(self, where: str, reason: str, fix: str) -> None:
        self._items.append(Rejection(self.deal_id, where, reason, fix))

    @property
    def items(self) -> tuple[Rejection, ...]:
        return tuple(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)
