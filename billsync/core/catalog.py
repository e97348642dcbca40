"""What the mapping layer asks a target before a draft is accepted.

A target connector answers from its own data (its items, terms and tax codes, fetched
once per run); the mapping layer never sees vendor objects. `MappingOnlyCatalog`
answers from the mapping alone, for a dry run without target credentials: it cannot
tell whether an item exists, and says so in its refs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProductQuery:
    """Find what bills `product_code`: try `candidates` in order, e.g.
    (("sku", "PLAT-SUB"), ("name", "PLAT-SUB")) or (("lookup_key", "PLAT-SUB-USD"),)."""

    product_code: str
    currency: str
    candidates: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return " then ".join(f"{kind} '{value}'" for kind, value in self.candidates)


@dataclass(frozen=True)
class ProductMatch:
    ref: str
    """The target's id for the item/product, used as InvoiceLine.item_ref."""
    label: str
    active: bool = True


class TargetCatalog(Protocol):
    @property
    def target(self) -> str: ...

    def resolve_product(self, query: ProductQuery) -> ProductMatch | None: ...

    def currency_problem(self, currency: str) -> str | None:
        """Why this target cannot invoice in `currency`, or None when it can."""
        ...

    def term_exists(self, name: str) -> bool: ...

    def tax_code_exists(self, code: str) -> bool: ...


@dataclass(frozen=True)
class MappingOnlyCatalog:
    """Accepts every product, term and tax code; refs are marked as unverified."""

    target: str

    def resolve_product(self, query: ProductQuery) -> ProductMatch | None:
        kind, value = query.candidates[0]
        return ProductMatch(ref=f"unverified:{kind}:{value}", label=value)

    def currency_problem(self, currency: str) -> str | None:
        return None

    def term_exists(self, name: str) -> bool:
        return True

    def tax_code_exists(self, code: str) -> bool:
        return True
