"""`StripeTarget`: invoices created exactly once, resumed where a crash left them.

An invoice is built in steps, each its own request with its own deterministic
idempotency key derived from the draft's key (``short_key(key, step)``):

    create (draft, auto_advance false, pending items excluded, deal id in metadata)
    → add_lines (all lines in one call, ``lines_per_call`` a call past that)
    → finalize (``auto_advance`` true only to let Stripe collect charge_automatically,
      or email send_invoice invoices itself with ``delivery: stripe_emails``)
    → send (send_invoice invoices, when ``send_after_finalize`` and ``delivery: send_call``)

so the happy path is 4 calls once the customer is known (3 with ``stripe_emails``), and
a retry of any step replays it. An open invoice finalized without auto_advance (by an
attempt made under ``send_call``) is still sent by a send call whatever the setting
now is: Stripe would never email it, and dropping the send silently would leave the
customer without an invoice. Resuming a crashed attempt:
- within Stripe's 24 h key lifetime, create replays (``Idempotent-Replayed: true``); the
  invoice is then read afresh and completed from the step it reached: a draft gets its
  missing lines (found by ``metadata.billsync_line``) and is finalized, an open invoice
  is adopted (and sent with the same send key, which replays if it was sent);
- after that, the engine looks the deal up first (``find_invoices``, DESIGN.md "Exactly
  once") and hands what it found to ``create_invoice(draft, found=…)``, which reads
  those invoices afresh and resumes the one made with the same draft key instead of
  creating anything (the look-up's result is passed, never kept on the target);
- a create answered ``idempotency_error`` (same key, other values: the mapping changed
  without a new deal revision) also looks the invoice up and resumes it.
A draft is completed, never duplicated. Its existing lines must be the planned ones: a
draft holding other lines is not finalized (``invalid_data``: delete it and retry).

The create key is deliberately derived from the draft key alone, not from the request:
a changed request must fail as ``idempotency_error`` rather than create a second invoice.
The add_lines keys include a digest of their lines, so lines changed between attempts
(on a draft that has none yet) are sent under a new key instead of failing.

After finalization the invoice's pre-tax total is compared with ``draft.total``; a
difference (e.g. a customer-level coupon) is a ``Discrepancy`` collected for the engine
(`take_discrepancies`) and logged, while the invoice is still returned.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from billsync.connectors.stripe.amounts import stripe_currency
from billsync.connectors.stripe.catalog import StripeCatalog
from billsync.connectors.stripe.client import SYSTEM, StripeApi
from billsync.connectors.stripe.convert import (
    KEY_KEY,
    invoice_params,
    invoice_ref,
    metadata,
    total_mismatch,
)
from billsync.connectors.stripe.customers import CustomerResolver
from billsync.connectors.stripe.lines import LineProblem, PlannedLine, plan_lines, present_lines
from billsync.connectors.stripe.lookup import Invoice, InvoiceLookup
from billsync.core.canonical import Customer, Discrepancy, InvoiceDraft, InvoiceRef
from billsync.core.customer_identity import CustomerOwners, Resolved
from billsync.core.idempotency import short_key
from billsync.core.logs import get_logger
from billsync.core.naming import named
from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.core.retrying import stops_connector

__all__ = ["StripeTarget"]

log = get_logger("billsync.stripe.invoices")
_ADOPT_ORDER = {"open": 0, "paid": 0, "uncollectible": 0, "draft": 1}


def _invalid(message: str, *, code: str, field: str | None = None) -> ConnectorError:
    return ConnectorError(
        system=SYSTEM, error_class=ErrorClass.INVALID_DATA, code=code, field=field, message=message
    )


class StripeTarget:
    """`InvoiceTarget` for Stripe."""

    def __init__(
        self,
        api: StripeApi,
        *,
        now: Callable[[], datetime] | None = None,
        recent_window: timedelta = timedelta(hours=2),
        name: str = "stripe",
    ) -> None:
        self._name = name  # the connection's name: every object leaves under it
        self._api = api
        self._settings = api.settings
        self._now = now or (lambda: datetime.now(UTC))
        self._customers = CustomerResolver(api, now=self._now, recent_window=recent_window)
        self._read = InvoiceLookup(api, now=self._now, recent_window=recent_window)
        self._discrepancies: list[Discrepancy] = []

    @property
    def target(self) -> str:
        return self._name

    def catalog(self) -> StripeCatalog:
        """A fresh snapshot for this run."""
        return StripeCatalog(self._api, name=self._name)

    def take_discrepancies(self) -> list[Discrepancy]:
        """Total mismatches found since the last call (the list is emptied)."""
        found, self._discrepancies = self._discrepancies, []
        return [named(d, self._name) for d in found]

    def ensure_customer(self, customer: Customer) -> Customer:
        return self._customers.ensure(customer)

    def ensure_customers(
        self, customers: Sequence[Customer]
    ) -> Mapping[str, Customer | ConnectorError]:
        """The engine's optional batch hook (as QuickBooks has): every unlinked account
        of a batch in a few searches and one recent list, then a create per account
        still without a customer. Outcome per account id (`CustomerResolver.ensure_many`)."""
        return self._customers.ensure_many(customers)

    def resolve_customers(
        self, customers: Sequence[Customer], owners: CustomerOwners
    ) -> Mapping[str, Resolved | ConnectorError]:
        """`ensure_customers` under the identity rule, told who holds which customer
        (`billsync.core.customer_identity.MatchesCustomers`); says how each was found."""
        return self._customers.resolve_many(customers, owners)

    def fetch_invoice(self, external_id: str) -> InvoiceRef:
        return named(invoice_ref(self._read.retrieve(external_id)), self._name)

    # --- lookup --------------------------------------------------------------------

    def find_invoices(
        self, deal_id: str, customer_id: str | None = None, *, reference: str | None = None
    ) -> list[InvoiceRef]:
        """Invoices whose ``metadata.billsync_deal_id`` is the deal, oldest first.
        ``reference`` (the protocol's stored DocNumber) is not used: the deal id in the
        metadata is the reference Stripe invoices are created with.

        ``customer_id`` (optional, beyond the protocol) makes the lookup complete and
        strongly consistent with one list of that customer's invoices; without it,
        search is joined with a list of recent invoices (`lookup`). Pass what this
        returns to `create_invoice` (``found``) to resume an earlier attempt.
        """
        found = self._read.by_deal(deal_id, customer_id)
        return [named(invoice_ref(inv), self._name) for inv in found]

    # --- create --------------------------------------------------------------------

    def create_invoices(
        self,
        drafts: Sequence[InvoiceDraft],
        *,
        found: Mapping[str, Sequence[InvoiceRef]] | None = None,
    ) -> dict[str, InvoiceRef | ConnectorError]:
        """Stripe has no batch create: one `create_invoice` per draft, up to
        ``stripe.concurrency`` at a time. Each invoice is 4 calls in a row, so one at a
        time spends most of the run waiting on Stripe's latency while the rate budget
        (shared by the threads) goes unused. Every draft has its own idempotency keys and
        its intent is already committed, so the order of creation changes nothing. After
        an auth error the drafts not yet started are not attempted (they would only
        hammer Stripe). ``found``: what `find_invoices` returned, by deal id."""
        results: dict[str, InvoiceRef | ConnectorError] = {}
        stopped: list[ConnectorError] = []
        earlier = found or {}

        def one(draft: InvoiceDraft) -> None:
            if stopped:
                results[draft.deal_id] = stopped[0].with_context(deal_id=draft.deal_id)
                return
            try:
                results[draft.deal_id] = self.create_invoice(
                    draft, found=earlier.get(draft.deal_id, ())
                )
            except ConnectorError as exc:
                results[draft.deal_id] = exc
                if stops_connector(exc):
                    stopped.append(exc)

        if not drafts:
            return results
        one(drafts[0])  # alone first: a refused key then costs one call, not one a thread
        rest = drafts[1:]
        workers = min(self._settings.concurrency, len(rest))
        if workers <= 1:
            for draft in rest:
                one(draft)
            return results
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stripe") as pool:
            # Each task runs in a copy of the caller's context: the run's log fields.
            futures = [pool.submit(contextvars.copy_context().run, one, d) for d in rest]
            for future in futures:
                future.result()  # re-raise anything unexpected in the caller
        return results

    def create_invoice(
        self, draft: InvoiceDraft, *, found: Sequence[InvoiceRef] = ()
    ) -> InvoiceRef:
        """Create the draft's invoice, or finish the one an earlier attempt with the same
        draft key made: one the create key replays (within Stripe's 24 h), or one of
        ``found``, what `find_invoices` returned for the deal (after the key expired)."""
        try:
            return named(self._create(draft, found), self._name)
        except ConnectorError as exc:
            raise exc.with_context(deal_id=draft.deal_id) from None

    def _create(self, draft: InvoiceDraft, found: Sequence[InvoiceRef]) -> InvoiceRef:
        try:
            planned = plan_lines(draft)  # every amount checked before any call
        except LineProblem as exc:
            raise _invalid(
                f"Deal {draft.deal_id} cannot be invoiced exactly in Stripe: {exc}",
                code="amount_not_representable",
                field=exc.field,
            ) from None
        customer_id = self.ensure_customer(draft.customer).external_id
        assert customer_id is not None
        inv = self._resumable(draft, self._reread(found))
        if inv is None:
            inv = self._create_draft(draft, customer_id)
        return self._complete(draft, inv, planned)

    def _reread(self, found: Sequence[InvoiceRef]) -> list[Invoice]:
        """The found invoices as they are now (a look-up's answer may be minutes old,
        and only the invoice itself names the draft key it was made with); one deleted
        since (an unsent draft can be) is no longer there to resume."""
        invoices: list[Invoice] = []
        for ref in found:
            try:
                invoices.append(self._read.retrieve(ref.external_id))
            except ConnectorError as exc:
                if exc.error_class is not ErrorClass.NOT_FOUND:
                    raise
        return invoices

    def _resumable(self, draft: InvoiceDraft, found: list[Invoice]) -> Invoice | None:
        """The invoice an earlier attempt with this very draft key made, if any."""
        ours = [i for i in found if metadata(i).get(KEY_KEY) == draft.idempotency_key]
        live = sorted(
            (i for i in ours if i.get("status") in _ADOPT_ORDER),
            key=lambda i: (_ADOPT_ORDER[str(i["status"])], i.get("created") or 0, i["id"]),
        )
        if len(live) > 1:
            log.warning(
                "stripe.duplicate_invoices", deal_id=draft.deal_id, ids=[i["id"] for i in live]
            )
        if live:
            log.info("stripe.invoice_resumed", deal_id=draft.deal_id, id=live[0]["id"])
            return live[0]
        if ours:
            raise _voided(draft, ours[0])
        return None

    def _create_draft(self, draft: InvoiceDraft, customer_id: str) -> Invoice:
        params = invoice_params(draft, customer_id, self._settings)
        try:
            reply = self._api.call(
                "invoice create",
                lambda o: self._api.v1.invoices.create(params=params, options=o),
                idempotency_key=short_key(draft.idempotency_key, "create"),
            )
        except ConnectorError as exc:
            if exc.code == "idempotency_error":
                found = self._resumable(draft, self._read.by_deal(draft.deal_id, customer_id))
                if found is not None:
                    return found
                raise _invalid(
                    f"Stripe holds another request under this deal's idempotency key (the "
                    f"mapping or settings changed since the first attempt, same deal "
                    f"revision) but no invoice of deal {draft.deal_id} exists for customer "
                    f"{customer_id}. Edit the deal in Salesforce (a new revision gets a new "
                    "key) or retry after 24 h, when Stripe forgets the key",
                    code="idempotency_error",
                ) from None
            if exc.error_class is ErrorClass.NOT_FOUND and exc.field == "customer":
                raise ConnectorError(
                    system=SYSTEM,
                    error_class=ErrorClass.NOT_FOUND,
                    code="customer_deleted",
                    field="customer",
                    message=_customer_deleted(customer_id, draft.customer.account_id),
                ) from None
            raise
        if reply.replayed:
            # An earlier attempt created it; it may have gone further since: read it.
            log.info("stripe.invoice_create_replayed", deal_id=draft.deal_id, id=reply.data["id"])
            return self._read.retrieve(str(reply.data["id"]))
        return reply.data

    def _complete(
        self, draft: InvoiceDraft, inv: Invoice, planned: list[PlannedLine]
    ) -> InvoiceRef:
        if inv.get("currency") != stripe_currency(draft.currency):
            raise _invalid(
                f"Stripe invoice {inv['id']} of deal {draft.deal_id} is in "
                f"{str(inv.get('currency')).upper()}, the draft in {draft.currency}; void it "
                "in Stripe and change the deal so it gets a new revision",
                code="currency_mismatch",
            )
        if inv.get("status") == "void":
            raise _voided(draft, inv)
        if inv.get("status") == "draft":
            inv = self._add_lines(draft, inv, planned)
            inv = self._finalize(draft, inv)
        inv = self._send(draft, inv)
        self._check_total(draft, inv)
        return invoice_ref(inv)

    def _add_lines(self, draft: InvoiceDraft, inv: Invoice, planned: list[PlannedLine]) -> Invoice:
        lines = self._read.lines(inv)
        present = present_lines(lines)
        foreign = len(lines) - len(present)
        wrong = [i for i, a in present.items() if i >= len(planned) or planned[i].amount != a]
        if foreign or wrong:
            raise _invalid(
                f"Draft invoice {inv['id']} of deal {draft.deal_id} already holds lines that "
                f"are not the planned ones ({foreign} added by hand, {len(wrong)} from an "
                "earlier attempt with other amounts). billsync does not finalize it: delete "
                "the draft in Stripe (it was never sent) and retry",
                code="draft_lines_differ",
            )
        missing = [p for p in planned if p.index not in present]
        step = self._settings.lines_per_call
        for start in range(0, len(missing), step):
            params: dict[str, Any] = {"lines": [p.params for p in missing[start : start + step]]}
            digest = hashlib.sha256(
                json.dumps(params, sort_keys=True, default=str).encode()
            ).hexdigest()[:16]
            inv = self._api.call(
                "invoice add lines",
                partial(self._add_lines_request, str(inv["id"]), params),
                idempotency_key=short_key(draft.idempotency_key, f"add_lines:{digest}"),
            ).data
        return inv

    def _add_lines_request(
        self, invoice_id: str, params: dict[str, Any], options: dict[str, Any]
    ) -> Any:
        return self._api.v1.invoices.add_lines(invoice_id, params=params, options=options)

    def _finalize(self, draft: InvoiceDraft, inv: Invoice) -> Invoice:
        # auto_advance lets Stripe act on the open invoice: charge a charge_automatically
        # one, and (delivery stripe_emails) email a send_invoice one per the account's
        # email settings, which replaces our send call.
        method = inv.get("collection_method")
        collect = self._settings.send_after_finalize and (
            method == "charge_automatically"
            or (method == "send_invoice" and self._settings.delivery == "stripe_emails")
        )
        try:
            return self._api.call(
                "invoice finalize",
                lambda o: self._api.v1.invoices.finalize_invoice(
                    inv["id"], params={"auto_advance": collect}, options=o
                ),
                idempotency_key=short_key(draft.idempotency_key, "finalize"),
            ).data
        except ConnectorError as exc:
            if exc.code != "idempotency_error":
                raise
            fresh = self._read.retrieve(str(inv["id"]))  # finalized earlier with other options
            if fresh.get("status") == "draft":
                raise
            return fresh

    def _send(self, draft: InvoiceDraft, inv: Invoice) -> Invoice:
        due = int(inv.get("amount_remaining") or 0)
        if (
            not self._settings.send_after_finalize
            or inv.get("collection_method") != "send_invoice"
            or inv.get("status") != "open"
            or int(inv.get("amount_paid") or 0) > 0
            or due == 0
        ):
            return inv
        if self._settings.delivery == "stripe_emails" and inv.get("auto_advance"):
            return inv  # finalized with auto_advance: Stripe emails it, no call of ours
        try:
            return self._api.call(
                "invoice send",
                lambda o: self._api.v1.invoices.send_invoice(inv["id"], options=o),
                idempotency_key=short_key(draft.idempotency_key, "send"),
            ).data
        except ConnectorError as exc:
            if exc.is_retryable:
                raise  # the retry resumes here and sends under the same key
            # The invoice exists and is open: report the send, don't fail the create
            # (a failed create would be retried and replay the same error for 24 h).
            log.warning("stripe.invoice_not_sent", deal_id=draft.deal_id, error=str(exc))
            return inv

    def _check_total(self, draft: InvoiceDraft, inv: Invoice) -> None:
        found = total_mismatch(draft, inv, self._now())
        if found is not None:
            self._discrepancies.append(found)
            log.warning(
                "stripe.invoice_total_mismatch",
                deal_id=draft.deal_id,
                id=inv["id"],
                expected=found.expected,
                actual=found.actual,
            )


def _voided(draft: InvoiceDraft, inv: Mapping[str, Any]) -> ConnectorError:
    return _invalid(
        f"Stripe invoice {inv['id']} of deal {draft.deal_id} (this deal revision) was voided; "
        "billsync does not reissue it under the same revision. Edit the deal in Salesforce "
        "to invoice it again, or resolve the item if it should not be billed",
        code="invoice_voided",
    )


def _customer_deleted(customer_id: str, account_id: str) -> str:
    """The dash shape every connector message has (what happened — the fix), with the
    exact commands: billsync keeps the link, so restoring it is an operator's decision
    (the customer may have been merged into another one on purpose)."""
    return (
        f"Stripe customer {customer_id} of account {account_id} was deleted in Stripe — "
        f"run `billsync customers unlink stripe {account_id} --note '…'` so the retry "
        "creates a new customer (or `billsync customers link stripe "
        f"{account_id} cus_… --note '…'` to use another one), then retry this failure "
        "with `billsync failures retry`"
    )
