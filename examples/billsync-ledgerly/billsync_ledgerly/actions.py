"""The invoice target: customers, invoices created exactly once, the catalog.

Exactly once, twice over: each create sends the draft's idempotency key (Ledgerly replays
the first answer for 24 h), and before creating, the target looks the deal's invoices up
by ``reference`` and returns the one an earlier attempt made with the same key — so a
retry after the key expired (a crashed run picked up days later) still finds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from billsync.core.canonical import Customer, InvoiceDraft, InvoiceRef
from billsync.core.catalog import ProductMatch, ProductQuery, TargetCatalog
from billsync.core.protocols import ConnectorError
from billsync_ledgerly.client import LedgerlyClient
from billsync_ledgerly.convert import customer_body, invoice_body, invoice_ref

__all__ = ["LedgerlyCatalog", "LedgerlyTarget"]

# How the mapping layer may name a Ledgerly catalog item: billsync asks plug-in targets
# by ("product_code", code); a mapping part may ask by ("catalog_code", code).
CODE_KINDS = frozenset({"product_code", "catalog_code"})


@dataclass(frozen=True)
class LedgerlyCatalog:
    """What Ledgerly bills: catalog items by code, payment terms by name, currencies."""

    target: str
    items: Mapping[str, Mapping[str, Any]]
    terms: frozenset[str]
    currencies: frozenset[str]

    def resolve_product(self, query: ProductQuery) -> ProductMatch | None:
        for kind, value in query.candidates:
            item = self.items.get(value) if kind in CODE_KINDS else None
            if item is not None:
                return ProductMatch(ref=value, label=str(item["name"]), active=item["active"])
        return None

    def currency_problem(self, currency: str) -> str | None:
        if currency in self.currencies:
            return None
        return f"this Ledgerly account bills in {', '.join(sorted(self.currencies))} only"

    def term_exists(self, name: str) -> bool:
        return name in self.terms

    def tax_code_exists(self, code: str) -> bool:
        return False  # Ledgerly computes no tax: no mapping may name a tax code for it


class LedgerlyTarget:
    """`InvoiceTarget` for one Ledgerly account; ``target`` is the connection's name."""

    def __init__(self, client: LedgerlyClient) -> None:
        self._client = client

    @property
    def target(self) -> str:
        return self._client.connection

    def ensure_customer(self, customer: Customer) -> Customer:
        if customer.external_id:
            return customer
        found = self._client.get(
            "find customer", "/v1/customers", {"external_ref": customer.account_id}
        )["data"]
        if found:
            return customer.model_copy(update={"external_id": found[0]["id"]})
        body = customer_body(customer.name, customer.email, customer.currency, customer.account_id)
        key = f"billsync:{self.target}:customer:{customer.account_id}"
        made = self._client.post("create customer", "/v1/customers", body, idempotency_key=key)
        return customer.model_copy(update={"external_id": made["id"]})

    def find_invoices(self, deal_id: str, *, reference: str | None = None) -> Sequence[InvoiceRef]:
        # The deal id is Ledgerly's `reference` whatever the draft's doc number was, so
        # ``reference`` is not needed to find it.
        return [invoice_ref(self.target, raw) for raw in self._by_reference(deal_id)]

    def create_invoice(self, draft: InvoiceDraft) -> InvoiceRef:
        earlier = next(
            (raw for raw in self._by_reference(draft.deal_id)
             if raw.get("billsync_key") == draft.idempotency_key),
            None,
        )  # fmt: skip
        if earlier is not None:
            return invoice_ref(self.target, earlier)
        if not draft.customer.external_id:
            raise ValueError("ensure the draft's customer before creating its invoice")
        made = self._client.post(
            "create invoice",
            "/v1/invoices",
            invoice_body(draft, draft.customer.external_id),
            idempotency_key=draft.idempotency_key,
        )
        return invoice_ref(self.target, made)

    def create_invoices(
        self,
        drafts: Sequence[InvoiceDraft],
        *,
        found: Mapping[str, Sequence[InvoiceRef]] | None = None,
    ) -> Mapping[str, InvoiceRef | ConnectorError]:
        # One call makes an invoice, so ``found`` (a half-made invoice to resume) never
        # applies; Ledgerly has no batch endpoint.
        outcomes: dict[str, InvoiceRef | ConnectorError] = {}
        for draft in drafts:
            try:
                outcomes[draft.deal_id] = self.create_invoice(draft)
            except ConnectorError as error:
                outcomes[draft.deal_id] = error.with_context(deal_id=draft.deal_id)
        return outcomes

    def fetch_invoice(self, external_id: str) -> InvoiceRef:
        return invoice_ref(
            self.target, self._client.get("read invoice", f"/v1/invoices/{external_id}")
        )

    def catalog(self) -> TargetCatalog:
        raw = self._client.get("read catalog", "/v1/catalog")
        return LedgerlyCatalog(
            target=self.target,
            items={item["code"]: item for item in raw["items"]},
            terms=frozenset(raw["terms"]),
            currencies=frozenset(raw["currencies"]),
        )

    def _by_reference(self, deal_id: str) -> list[Any]:
        """The deal's invoices, oldest first (Ledgerly lists by creation)."""
        return list(self._client.pages("find invoices", "/v1/invoices", {"reference": deal_id}))
