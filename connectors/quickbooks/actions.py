"""Writes: invoices exactly once (batch and single), void, send; lookups by deal.

Exactly once, in layers (DESIGN.md):
- The engine commits the intent row before calling; after a crash it calls
  `find_invoices` before any retry. The deal reference is written twice: DocNumber (the
  mapping's ``invoice.doc_number``, queryable) and PrivateNote ``billsync deal <id>``
  (read back into ``InvoiceRef.deal_id``; QBO cannot query PrivateNote).
- Every create carries a requestid: QuickBooks replays the original answer for a
  repeated id, so a retry after a lost answer writes nothing. Batch: one requestid per
  batch, ``short_key`` of the sorted idempotency keys (36 chars, Intuit's batch limit),
  the same for the same drafts on every retry. Single: ``short_key(idempotency_key)``.
- ``bId`` (≤ 10 chars): two digits of the item's position in the batch plus 8 hex
  characters of sha256(idempotency key) — unique within the batch by construction,
  and traceable to the deal in logs.
- With ``lookup_before_create`` (default) each batch is preceded by one
  ``DocNumber IN (...)`` query, and invoices a crashed attempt created are adopted.
  A create refused with 6140 (duplicate DocNumber) is resolved the same way.
- Fallbacks never guess: items a batch definitely did not take (throttled batch after
  its retries, batch-level Fault, item Fault that is transient, item not answered) go
  to single creates; a batch whose outcome is unknown (timeouts, dropped connections,
  5xx after the retries) is returned as ``transient`` for every draft, for the engine
  to retry with lookup first.

Discrepancies: after each create the returned TotalAmt is compared with
``draft.total``; a difference (typically sales tax QuickBooks computed) is recorded as
an ``invoice_total_mismatch`` Discrepancy with both numbers. `take_discrepancies`
hands the engine everything recorded since its last call.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billsync.connectors.quickbooks.catalog import QboCatalog
from billsync.connectors.quickbooks.client import SYSTEM, QboClient, batch_fault
from billsync.connectors.quickbooks.convert import (
    amount,
    deal_from_note,
    invoice_body,
    invoice_ref,
    is_voided,
)
from billsync.connectors.quickbooks.customers import CustomerResolver
from billsync.connectors.quickbooks.query import in_list, in_lists, quote, select
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.core import money
from billsync.core.canonical import Customer, Discrepancy, DiscrepancyKind, InvoiceDraft, InvoiceRef
from billsync.core.idempotency import short_key
from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = ["InvoiceWriter", "batch_id", "batch_request_id"]

log = get_logger("billsync.quickbooks.invoices")
Outcome = InvoiceRef | ConnectorError
Clock = Callable[[], datetime]


def batch_request_id(drafts: Sequence[InvoiceDraft]) -> str:
    return short_key("\n".join(sorted(d.idempotency_key for d in drafts)), "batch")


def batch_id(index: int, draft: InvoiceDraft) -> str:
    digest = hashlib.sha256(draft.idempotency_key.encode()).hexdigest()[:8]
    return f"{index:02d}{digest}"


@dataclass(frozen=True)
class _Ready:
    draft: InvoiceDraft
    body: dict[str, Any]


class InvoiceWriter:
    def __init__(
        self,
        client: QboClient,
        settings: QuickBooksSettings,
        catalog: QboCatalog,
        customers: CustomerResolver,
        *,
        clock: Clock,
    ) -> None:
        self._client = client
        self._settings = settings
        self._catalog = catalog
        self._customers = customers
        self._clock = clock
        self._lock = threading.Lock()
        self._discrepancies: list[Discrepancy] = []

    # --- creating ------------------------------------------------------------------

    def create_invoice(self, draft: InvoiceDraft) -> InvoiceRef:
        out: dict[str, Outcome] = {}
        ready = self._prepare([draft], out)
        if ready:
            try:
                remaining = self._adopt_existing(ready, out)
            except ConnectorError as exc:
                raise exc.with_context(deal_id=draft.deal_id) from None
            for item in remaining:
                out[draft.deal_id] = self._create_single(item)
        result = out[draft.deal_id]
        if isinstance(result, ConnectorError):
            raise result
        return result

    def create_invoices(self, drafts: Sequence[InvoiceDraft]) -> dict[str, Outcome]:
        deal_ids = [d.deal_id for d in drafts]
        if len(set(deal_ids)) != len(deal_ids):
            raise ValueError("create_invoices got two drafts for the same deal")
        out: dict[str, Outcome] = {}
        ready = sorted(self._prepare(drafts, out), key=lambda r: r.draft.idempotency_key)
        size = self._settings.batch_size
        for start in range(0, len(ready), size):
            try:
                chunk = self._adopt_existing(ready[start : start + size], out)
            except ConnectorError as exc:
                for item in ready[start : start + size]:
                    out[item.draft.deal_id] = exc.with_context(deal_id=item.draft.deal_id)
                continue
            if len(chunk) == 1:
                out[chunk[0].draft.deal_id] = self._create_single(chunk[0])
            elif chunk:
                self._create_batch(chunk, out)
        return out

    def _prepare(self, drafts: Sequence[InvoiceDraft], out: dict[str, Outcome]) -> list[_Ready]:
        missing = [d.customer for d in drafts if not d.customer.external_id]
        customers: Mapping[str, Customer | ConnectorError] = {}
        if missing:
            try:
                customers = self._customers.ensure_many(missing)
            except ConnectorError as exc:  # a lookup failed: every such draft waits
                customers = {c.account_id: exc for c in missing}
        ready = []
        for draft in drafts:
            customer = customers.get(draft.customer.account_id, draft.customer)
            if isinstance(customer, ConnectorError):
                out[draft.deal_id] = customer.with_context(deal_id=draft.deal_id)
                continue
            try:
                body = invoice_body(
                    draft,
                    customer_id=str(customer.external_id),
                    home_currency=self._catalog.home_currency,
                    term_id=self._catalog.term_id,
                    tax_code_id=self._catalog.tax_code_id,
                    today=self._clock().date(),
                )
            except ConnectorError as exc:
                out[draft.deal_id] = exc
                continue
            ready.append(_Ready(draft, body))
        return ready

    def _create_batch(self, chunk: list[_Ready], out: dict[str, Outcome]) -> None:
        drafts = [r.draft for r in chunk]
        items = [
            {"bId": batch_id(i, r.draft), "operation": "create", "Invoice": r.body}
            for i, r in enumerate(chunk)
        ]
        try:
            answer = self._client.call(
                "POST",
                "batch",
                body={"BatchItemRequest": items},
                request_id=batch_request_id(drafts),
                batch=True,
            )
        except ConnectorError as exc:
            if exc.error_class in (ErrorClass.RATE_LIMITED, ErrorClass.INVALID_DATA):
                # Refused as a whole: nothing was created. One by one instead.
                log.warning("quickbooks.batch_refused", code=exc.code, items=len(chunk))
                for item in chunk:
                    out[item.draft.deal_id] = self._create_single(item)
            else:
                for item in chunk:
                    out[item.draft.deal_id] = exc.with_context(deal_id=item.draft.deal_id)
            return
        by_bid = {str(a.get("bId")): a for a in answer.get("BatchItemResponse", [])}
        for i, item in enumerate(chunk):
            deal_id = item.draft.deal_id
            response = by_bid.get(batch_id(i, item.draft))
            if response is None:
                out[deal_id] = self._create_single(item, lookup_first=True)
            elif "Fault" in response:
                error = batch_fault(response["Fault"])
                if error.code == "6140":
                    out[deal_id] = self._adopt_duplicate(item, error)
                elif error.is_retryable:
                    out[deal_id] = self._create_single(item)  # the item was not created
                else:
                    out[deal_id] = error.with_context(deal_id=deal_id)
            else:
                out[deal_id] = self._finish(item.draft, response.get("Invoice", {}))

    def _create_single(self, item: _Ready, lookup_first: bool = False) -> Outcome:
        if lookup_first:
            adopted: dict[str, Outcome] = {}
            if not self._adopt_existing([item], adopted):
                return adopted[item.draft.deal_id]
        try:
            record = self._client.call(
                "POST",
                "invoice",
                body=item.body,
                request_id=short_key(item.draft.idempotency_key),
            )["Invoice"]
        except ConnectorError as exc:
            if exc.code == "6140":
                return self._adopt_duplicate(item, exc)
            return exc.with_context(deal_id=item.draft.deal_id)
        return self._finish(item.draft, record)

    # --- adopting what exists ------------------------------------------------------

    def _by_doc_numbers(self, numbers: Sequence[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for chunk in in_lists(numbers):
            statement = select("Invoice", f"DocNumber IN {in_list(chunk)}")
            rows += self._client.query(statement).get("Invoice", [])
        return rows

    def _adopt_existing(
        self, chunk: list[_Ready], out: dict[str, Outcome], *, force: bool = False
    ) -> list[_Ready]:
        """Drafts of ``chunk`` with no invoice yet; the others are adopted into ``out``."""
        numbers = [r.draft.doc_number for r in chunk if r.draft.doc_number]
        if not (force or self._settings.lookup_before_create) or not numbers:
            return chunk
        found: dict[str, list[dict[str, Any]]] = {}
        for row in self._by_doc_numbers(numbers):
            if not is_voided(row):
                found.setdefault(str(row.get("DocNumber", "")).casefold(), []).append(row)
        remaining = []
        for item in chunk:
            deal_id = item.draft.deal_id
            candidates = found.get((item.draft.doc_number or "").casefold(), [])
            ours = [
                r for r in candidates if deal_from_note(r.get("PrivateNote")) in (None, deal_id)
            ]
            if ours:
                record = ours[0]
                log.warning(
                    "quickbooks.invoice_adopted", deal_id=item.draft.deal_id, invoice=record["Id"]
                )
                out[item.draft.deal_id] = self._finish(item.draft, record, created=False)
            else:
                remaining.append(item)
        return remaining

    def _adopt_duplicate(self, item: _Ready, error: ConnectorError) -> Outcome:
        """6140: the DocNumber exists. Ours (same deal) → adopt; else a real conflict."""
        out: dict[str, Outcome] = {}
        if item.draft.doc_number and not self._adopt_existing([item], out, force=True):
            return out[item.draft.deal_id]
        return error.with_context(deal_id=item.draft.deal_id, field="doc_number")

    # --- results -------------------------------------------------------------------

    def _finish(self, draft: InvoiceDraft, record: dict[str, Any], created: bool = True) -> Outcome:
        try:
            ref = invoice_ref(
                record,
                home_currency=self._catalog.home_currency,
                environment=self._settings.environment,
            )
        except (KeyError, ValueError) as exc:
            return ConnectorError(
                system=SYSTEM,
                error_class=ErrorClass.TRANSIENT,
                message=f"QuickBooks answered the create with an unreadable invoice ({exc})",
                code="BAD_RESPONSE",
                deal_id=draft.deal_id,
            )
        if ref.total != draft.total:
            self._record_mismatch(draft, ref, record)
        if self._settings.send_after_create and record.get("EmailStatus") != "EmailSent":
            self._send(draft, ref)
        log.info(
            "quickbooks.invoice_created" if created else "quickbooks.invoice_found",
            deal_id=draft.deal_id,
            invoice=ref.external_id,
            number=ref.number,
        )
        return ref

    def _record_mismatch(
        self, draft: InvoiceDraft, ref: InvoiceRef, record: dict[str, Any]
    ) -> None:
        tax = amount((record.get("TxnTaxDetail") or {}).get("TotalTax"))
        difference = money.sum_amounts([ref.total, draft.total.copy_negate()], ref.currency)
        with self._lock:
            self._discrepancies.append(
                Discrepancy(
                    kind=DiscrepancyKind.INVOICE_TOTAL_MISMATCH,
                    deal_id=draft.deal_id,
                    target=SYSTEM,
                    external_id=ref.external_id,
                    expected=draft.total,
                    actual=ref.total,
                    detail=f"QuickBooks TotalAmt differs from the intended total by "
                    f"{difference} {ref.currency} (TotalTax {tax})",
                    detected_at=self._clock(),
                )
            )

    def _send(self, draft: InvoiceDraft, ref: InvoiceRef) -> None:
        try:
            self.send_invoice(ref.external_id, request_key=draft.idempotency_key)
        except ConnectorError as exc:
            # The invoice exists; a failed email must not turn it into a failed create.
            log.warning(
                "quickbooks.invoice_send_failed",
                deal_id=draft.deal_id,
                invoice=ref.external_id,
                error=str(exc),
            )

    def take_discrepancies(self) -> list[Discrepancy]:
        with self._lock:
            found, self._discrepancies = self._discrepancies, []
        return found

    # --- reads and updates ---------------------------------------------------------

    def find_invoices(self, deal_id: str, *, reference: str | None = None) -> list[InvoiceRef]:
        """Invoices carrying the deal's DocNumber (``reference``: the one the invoice was
        or will be sent with, which the engine always passes; None: the default
        mapping's, the deal id cut to 21 characters), excluding any whose PrivateNote
        names a different deal. Voided ones are included. Nothing is remembered between
        calls: what a look-up needs comes in its arguments."""
        number = reference or deal_id[:21]
        statement = select("Invoice", f"DocNumber = {quote(number)}")
        rows = self._client.query(statement).get("Invoice", [])
        return [
            self._ref(r) for r in rows if deal_from_note(r.get("PrivateNote")) in (None, deal_id)
        ]

    def fetch_invoice(self, external_id: str) -> InvoiceRef:
        return self._ref(self._client.read("Invoice", external_id))

    def void_invoice(self, external_id: str) -> InvoiceRef:
        record = self._client.update(
            "Invoice",
            external_id,
            lambda current: {"Id": current["Id"], "SyncToken": current["SyncToken"]},
            params={"operation": "void"},
        )
        return self._ref(record)

    def send_invoice(self, external_id: str, *, request_key: str | None = None) -> InvoiceRef:
        record = self._client.call(
            "POST",
            f"invoice/{external_id}/send",
            content_type="application/octet-stream",
            request_id=short_key(request_key or f"invoice:{external_id}", "send"),
        )["Invoice"]
        return self._ref(record)

    def _ref(self, record: Mapping[str, Any]) -> InvoiceRef:
        """An invoice read back. Its own CurrencyRef decides the currency, so a lookup
        (reconcile, crash recovery) costs no preferences call (`QboCatalog.currency_of`)."""
        return invoice_ref(
            record,
            home_currency=self._catalog.currency_of(record),
            environment=self._settings.environment,
        )
