"""Ledgerly's part of the mapping file (`ConnectorSpec.mapping`): ``products.ledgerly``
and ``terms.values.<term>.ledgerly`` (or the same under a connection's name).

Ledgerly bills *catalog items* by their code; ``products.ledgerly.map`` maps a Salesforce
product code to a catalog code where they differ (the rest bill under their own code).
Payment terms are named on the invoice and must exist in the account (``GET
/v1/catalog`` lists them); a term without a Ledgerly entry is sent by its own name.
Ledgerly computes no tax, so there is no ``tax.ledgerly``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from billsync.core.target_mapping import Candidates, TargetMapping, Term, ValueOf

__all__ = ["MAPPING", "LedgerlyProducts"]


class LedgerlyProducts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Explicit exceptions: "PRODUCT-CODE": "CATALOG-CODE".
    map: dict[str, str] = Field(default_factory=dict)


def product_candidates(products: LedgerlyProducts, code: str, value_of: ValueOf) -> Candidates:
    return (("catalog_code", products.map.get(code, code)),)


def term_meaning(entry: str | None, name: str) -> Term:
    return Term(entry or name, must_exist=True)


MAPPING = TargetMapping(
    products=LedgerlyProducts,
    term=str,
    product_candidates=product_candidates,
    product_map=lambda products: products.map,
    term_meaning=term_meaning,
    product_noun="catalog item",
)
