"""The small protocols the engine depends on, and the error taxonomy.

Connectors implement these structurally (``typing.Protocol``): no base class to inherit,
just the methods. Everything crossing this boundary is a canonical model from
``billsync.core.canonical`` or a ``ConnectorError``; a vendor object or vendor exception leaking
through is a bug. What a connector may do beyond its role is an optional ability: a small
runtime-checkable protocol at the end of this module, which the engine checks with
``isinstance``.

Cursors are opaque strings owned by the connector (Salesforce: SystemModstamp and Id of
the last deal; Stripe: the last event id; QBO: a CDC ``changedSince`` timestamp). The
engine stores them in the ledger and hands them back; it never parses them. Reads yield
each item together with the cursor that is safe to store once that item, and every item
before it, is fully recorded: the watermark then advances only past recorded work, and a
crash replays at most the unrecorded tail (the ledger dedupes the replay).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, Protocol, Self, TypeVar, runtime_checkable

from billsync.core.canonical import (
    Customer,
    Deal,
    DealWriteBack,
    InvoiceDraft,
    InvoiceMoney,
    InvoiceRef,
    PaymentEvent,
    WebhookNotification,
)
from billsync.core.catalog import TargetCatalog

__all__ = [
    "ApiQuota",
    "Checkpointed",
    "ConnectorError",
    "CountsWonDeals",
    "CredentialStore",
    "Cursor",
    "DealSource",
    "DescribesWebhookRequests",
    "EnsuresCustomers",
    "ErrorClass",
    "ErrorRule",
    "FetchesDeals",
    "InvoiceTarget",
    "ListsWonDeals",
    "PaymentFeed",
    "ReadRejection",
    "ReadsDealStages",
    "ReadsInvoicesInBatch",
    "ReportsLastCursor",
    "ReportsQuota",
    "WebhookRejectReason",
    "WebhookRejected",
    "WebhookVerifier",
]

Cursor = str
"""Opaque, connector-defined position in a source or feed."""

T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Checkpointed(Generic[T_co]):
    """An item read from a source, with the cursor to store once it is recorded."""

    item: T_co
    cursor: Cursor


class ReadRejection(Protocol):
    """A deal the source could not read into a `Deal` (the source names the field and the fix)."""

    @property
    def deal_id(self) -> str: ...

    @property
    def field(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def deal_name(self) -> str | None:
        """The deal's name when it could be read (failure lists show it), else None."""
        ...


# --- error taxonomy ----------------------------------------------------------------


class ErrorClass(StrEnum):
    """What the engine does next, decided by each connector's error table.

    - ``transient``: 5xx, timeouts, connection resets. Retry in-call with jittered
      exponential backoff; if still failing, queue a work item for a later run.
    - ``rate_limited``: 429, QBO throttle fault 3001, Salesforce REQUEST_LIMIT_EXCEEDED.
      Wait ``retry_after`` (QBO wants 60 s) before any retry in-call; then queue.
    - ``auth``: expired or revoked credentials, missing permission. Stop that connector
      for this run and alert; retrying only hammers the provider and can lock accounts.
    - ``conflict``: the object changed under us (QBO stale SyncToken 5010). Refetch,
      reapply the change, retry; never resend the same request.
    - ``invalid_data``: permanent until the data or the mapping changes (QBO 6240
      duplicate name, 610 inactive item; Stripe invalid_request_error). Record a
      needs-attention failure naming the deal and field; retried automatically when the
      deal's revision or the mapping files change, not on a timer.
    - ``not_found``: the object does not exist (deleted out of band, wrong id). Callers
      decide: a lookup returns None/empty, an update of our own invoice becomes a
      reconciliation discrepancy.
    """

    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    CONFLICT = "conflict"
    INVALID_DATA = "invalid_data"
    NOT_FOUND = "not_found"

    @property
    def retryable(self) -> bool:
        """True when the same request, unchanged, may succeed later."""
        return self in (ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED)


class ConnectorError(Exception):
    """A vendor error translated into something the engine and an operator can act on.

    ``message`` is for people: safe (no tokens, no request bodies, no customer data
    beyond ids), and actionable ("Item 'Consulting' is inactive in QuickBooks; reactivate
    it or map the product to another item"). ``str()`` and ``repr()`` show only the
    fields given here. A vendor exception may carry secrets (URLs with tokens, request
    bodies), so raise this ``from None`` unless the cause is known to be clean.
    """

    def __init__(
        self,
        *,
        system: str,
        error_class: ErrorClass | str,
        message: str,
        code: str | None = None,
        retry_after: timedelta | None = None,
        deal_id: str | None = None,
        field: str | None = None,
    ) -> None:
        if not message:
            raise ValueError("ConnectorError needs a message an operator can act on")
        if retry_after is not None and (
            not isinstance(retry_after, timedelta) or retry_after < timedelta(0)
        ):
            raise ValueError("retry_after must be a non-negative timedelta")
        super().__init__(message)
        self.system = system
        self.error_class = ErrorClass(error_class)
        self.message = message
        self.code = code
        self.retry_after = retry_after
        self.deal_id = deal_id
        self.field = field

    @property
    def is_retryable(self) -> bool:
        """Retry the same call (in-call, then via the queue): transient and rate_limited."""
        return self.error_class.retryable

    def _fields(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "error_class": self.error_class,
            "message": self.message,
            "code": self.code,
            "retry_after": self.retry_after,
            "deal_id": self.deal_id,
            "field": self.field,
        }

    def with_context(self, *, deal_id: str | None = None, field: str | None = None) -> Self:
        """A copy naming the deal and field, for callers that know them (the client's
        error table usually does not)."""
        fields = self._fields()
        if deal_id is not None:
            fields["deal_id"] = deal_id
        if field is not None:
            fields["field"] = field
        return type(self)(**fields)

    def __str__(self) -> str:
        head = f"[{self.system} {self.error_class}{f' {self.code}' if self.code else ''}]"
        extras = []
        if self.deal_id:
            extras.append(f"deal {self.deal_id}")
        if self.field:
            extras.append(f"field {self.field}")
        if self.retry_after is not None:
            extras.append(f"retry after {int(self.retry_after.total_seconds())}s")
        tail = f" ({'; '.join(extras)})" if extras else ""
        return f"{head} {self.message}{tail}"

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={str(v) if isinstance(v, ErrorClass) else v!r}"
            for k, v in self._fields().items()
            if v is not None
        )
        return f"{type(self).__name__}({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only __init__: teach pickle (multiprocessing, queues) to rebuild us.
        return (_rebuild_connector_error, (type(self), self._fields()))


def _rebuild_connector_error(cls: type[ConnectorError], fields: dict[str, Any]) -> ConnectorError:
    return cls(**fields)


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """One row of a connector's error table: what class of failure, and the fix to
    tell the operator. Each connector keeps its own table of these in ``client.py``."""

    error_class: ErrorClass
    fix: str


class WebhookRejectReason(StrEnum):
    """Why a webhook request was refused; nothing from it is stored."""

    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"  # timestamp outside the tolerance window (Stripe: 300 s)
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"

    @property
    def http_status(self) -> int:
        """The default answer; a connector may override it per provider (Stripe's own
        examples answer a bad signature with 400, Intuit expects 401)."""
        if self in (WebhookRejectReason.MALFORMED, WebhookRejectReason.STALE):
            return 400
        if self is WebhookRejectReason.TOO_LARGE:
            return 413
        return 401


class WebhookRejected(Exception):
    """A webhook request that failed verification. The message never quotes the
    signature, the secret or the body."""

    def __init__(
        self, reason: WebhookRejectReason, message: str, *, http_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        return self._http_status or self.reason.http_status

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_rejection, (self.reason, self.message, self._http_status))


def _rebuild_rejection(
    reason: WebhookRejectReason, message: str, http_status: int | None
) -> WebhookRejected:
    return WebhookRejected(reason, message, http_status=http_status)


# --- protocols ---------------------------------------------------------------------


@runtime_checkable
class DealSource(Protocol):
    """Where closed-won deals come from (Salesforce), and where money state goes back.

    The one description of a deal source: a connector's ``ConnectorParts.source``, what
    the engine pulls from and writes back to, and what the contract suite checks. It
    holds connections: a context manager, and ``close`` releases them. Abilities a
    source may add are the optional protocols below (`FetchesDeals`, `ReportsQuota`,
    `ListsWonDeals`, `ReadsDealStages`, `CountsWonDeals`).
    """

    @property
    def system(self) -> str: ...

    def pull(self, since: Cursor | None) -> Iterator[Checkpointed[Deal | ReadRejection]]:
        """Deals changed since ``since`` (None: from the beginning), oldest first.

        A deal that cannot be read into a `Deal` arrives as a `ReadRejection` naming the
        field and the fix, never dropped: the engine records it as needing attention and
        goes on. Implementations re-read an overlap window before the cursor (the engine
        dedupes on deal id and revision) and follow pagination lazily. Raises
        ConnectorError.
        """
        ...

    def write_back(
        self,
        updates: Sequence[DealWriteBack],
        errors: Mapping[str, str] | None = None,
    ) -> Mapping[str, ConnectorError]:
        """Write money state onto the deals (each update carries its Billing Status
        label), and ``errors``, the sync error to show per deal (a deal with an error and
        no update shows status Error); batch as the API allows (Salesforce: 200 per
        sObject Collections call). Returns the failures by deal id (empty when all
        succeeded); raises ConnectorError only when nothing could be written."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


@runtime_checkable
class InvoiceTarget(Protocol):
    """Where invoices are created exactly once (QuickBooks Online, Stripe)."""

    @property
    def target(self) -> str: ...

    def ensure_customer(self, customer: Customer) -> Customer:
        """Find (by ``external_id``, then a deterministic match) or create the customer;
        return it with ``external_id`` set."""
        ...

    def find_invoices(self, deal_id: str, *, reference: str | None = None) -> Sequence[InvoiceRef]:
        """Invoices in the target carrying this deal's reference, by a read that does not
        depend on idempotency keys (which expire), oldest first. ``reference`` is what the
        invoice was created with (the draft's ``doc_number``, stored with the intent);
        None: the target's default reference for the deal. More than one is a duplicate
        the engine reports. Used before any create is retried after a crash."""
        ...

    def create_invoice(self, draft: InvoiceDraft) -> InvoiceRef:
        """Create the invoice, sending ``draft.idempotency_key`` (Stripe
        ``Idempotency-Key``, QBO ``requestid``) and writing the deal reference where
        ``find_invoices`` will see it. Must not create a second invoice when called again
        with the same key."""
        ...

    def create_invoices(
        self,
        drafts: Sequence[InvoiceDraft],
        *,
        found: Mapping[str, Sequence[InvoiceRef]] | None = None,
    ) -> Mapping[str, InvoiceRef | ConnectorError]:
        """Create several invoices, using the target's batch path where it has one
        (QBO ``batch``, 30 items a call). Same exactly-once rules as ``create_invoice``
        for each draft; returns one outcome per ``deal_id``. A target without a batch
        path loops over ``create_invoice``.

        ``found``: for a draft retried after a crash, the unfinished invoices
        ``find_invoices`` returned for its deal, by deal id. A target that builds an
        invoice in several calls (Stripe: draft, lines, finalize) must resume the one an
        earlier attempt with the same draft key made — its idempotency keys may have
        expired since (Stripe keeps them 24 h) — never make a second. A target whose
        create is one call ignores it."""
        ...

    def fetch_invoice(self, external_id: str) -> InvoiceRef:
        """Current state of an invoice; ConnectorError(not_found) if it is gone."""
        ...

    def catalog(self) -> TargetCatalog:
        """What the mapping layer may ask before a draft is accepted: products, terms,
        tax codes, currencies. Loaded once per run (e.g. every QBO Item, paged)."""
        ...


@runtime_checkable
class CredentialStore(Protocol):
    """Durable storage for rotating credentials (the ledger's ``credentials`` table).

    Intuit rotates refresh tokens: a refreshed token must be saved, committed, before
    the new access token is used, and only one process may refresh at a time.
    """

    def load(self, name: str) -> tuple[Mapping[str, Any], int] | None:
        """The stored data and its version, or None when nothing is stored yet."""
        ...

    def save(self, name: str, data: Mapping[str, Any], expected_version: int | None) -> bool:
        """Compare-and-swap: store ``data`` if the stored version is still
        ``expected_version`` (None: nothing stored). Committed before returning."""
        ...

    def hold(self, name: str, ttl: timedelta) -> AbstractContextManager[bool]:
        """Hold the refresher lease for ``name`` while the block runs; yields False if
        another process holds it (the caller waits and reloads instead)."""
        ...


@runtime_checkable
class PaymentFeed(Protocol):
    """Where an invoice target's money changes are learnt (a polled feed and webhook
    events) and read.

    Events are **hints**: a `PaymentEvent` names the invoice (and, where it has one, the
    payment) that changed. The money itself is always taken from a fresh read of the
    invoice (`read_invoice_money`): the target is the authority, and a webhook body —
    even a signed one — is not believed about amounts.
    """

    @property
    def provider(self) -> str: ...

    def read_invoice_money(self, external_ids: Sequence[str]) -> Mapping[str, InvoiceMoney]:
        """The current money of each invoice: totals, document status, due date and
        every money fact (payments, credits, refunds, disputes) with the target's own
        ids, reading in batches where the API allows. An id the target no longer has
        (deleted) is absent from the answer. Raises ConnectorError."""
        ...

    def events_since(self, since: Cursor | None) -> Iterator[Checkpointed[PaymentEvent]]:
        """Events after ``since`` (Stripe events, QBO CDC), oldest first. Both providers
        reach back only 30 days; a cursor older than that is a gap to report."""
        ...

    def resolve(self, notification: WebhookNotification) -> Sequence[PaymentEvent]:
        """Turn a stored notification into payment events, fetching what it only names
        (Intuit sends ids: fetch the Payment, follow LinkedTxn to invoices). Empty for
        notifications that are not about money."""
        ...


@runtime_checkable
class WebhookVerifier(Protocol):
    """Checks a webhook request on its raw bytes before anything parses it.

    The server serves each connection's verifier at ``POST /webhooks/<connection>`` and
    knows nothing of the provider: the verifier decides what is genuine, how a refusal
    is answered (`WebhookRejected.http_status`) and what is acknowledged without being
    stored. `DescribesWebhookRequests` lets it say more about the requests it expects.
    """

    @property
    def provider(self) -> str: ...

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Sequence[WebhookNotification]:
        """Verify the signature over ``body`` exactly as received and return the
        notifications it carries; raise WebhookRejected otherwise. Header names must be
        matched case-insensitively. Comparisons are constant-time.

        A genuine request carrying notifications this connection does not serve (another
        company, another account) is not refused: leave those out, log them, and return
        the rest, possibly nothing; the server answers 2xx. A refusal makes the provider
        retry what no retry can fix, and some (Intuit) hold every later event behind it.
        """
        ...


@runtime_checkable
class DescribesWebhookRequests(Protocol):
    """Optional ability of a `WebhookVerifier`: what its provider's requests look like.

    The server refuses another content type with 415 before reading the body, and names
    the headers in its OpenAPI document; without this ability it reads any body and
    leaves the refusing to ``verify``.
    """

    @property
    def headers(self) -> tuple[str, ...]:
        """The request headers ``verify`` reads, the signature's first
        (``Stripe-Signature``)."""
        ...

    @property
    def media_types(self) -> frozenset[str]:
        """The content types the provider sends, lower case and without parameters
        (``application/json``; Stripe's ``; charset=utf-8`` is a parameter)."""
        ...


# --- optional abilities --------------------------------------------------------------
#
# What a connector may do beyond its role's protocol. The engine checks each with
# ``isinstance`` (they are runtime-checkable) and takes the slower path, or skips the
# step, when a connector lacks it. ``isinstance`` only sees that the members exist, so
# each ability is only the members its caller uses, typed here for mypy.


@runtime_checkable
class FetchesDeals(Protocol):
    """A deal source that re-reads given deals by id (Salesforce: ``Id IN (…)``).

    The retry queue uses it to re-plan deals whose problem may have been fixed outside
    the deal (a mapping or catalog change); without it those wait until the deal changes.
    """

    def fetch_deals(self, ids: Sequence[str]) -> Iterator[Deal | ReadRejection]:
        """These deals, read and converted as `DealSource.pull` does, in no set order.
        Ids that are not (or no longer) won deals in scope are absent. Raises
        ConnectorError."""
        ...


class ApiQuota(Protocol):
    """A source's API allocation as last reported (Salesforce: per org and day)."""

    @property
    def used(self) -> int | None: ...

    @property
    def max(self) -> int | None:
        """None until the vendor has reported it (no call made yet)."""
        ...

    @property
    def floor_percent(self) -> Decimal:
        """The share of ``max`` billsync leaves to other integrations."""
        ...

    @property
    def stopped(self) -> bool:
        """True when the floor stopped this run's calls."""
        ...


@runtime_checkable
class ReportsQuota(Protocol):
    """A deal source that reports its API quota; the engine keeps the last value for
    ``billsync status`` between runs."""

    @property
    def quota(self) -> ApiQuota: ...


@runtime_checkable
class CountsWonDeals(Protocol):
    """A deal source that can say cheaply how many closed-won deals it holds (the first
    run's safety stop names that number)."""

    def count_won_deals(self, before: datetime | None = None) -> int: ...


@runtime_checkable
class ListsWonDeals(Protocol):
    """A deal source that can list won deal ids cheaply (Salesforce: ``SELECT Id`` only);
    reconciliation checks that the ledger knows them."""

    def won_deal_ids(self, up_to: Cursor) -> Iterator[str]:
        """Ids of closed-won deals the pull has passed: those the incremental pull
        would not return from ``up_to`` (the stored deals watermark) because they sort
        at or before it, within the source's look-back window (Salesforce:
        ``salesforce.won_check_days``). Deals changed since are the next pull's."""
        ...


@runtime_checkable
class ReadsDealStages(Protocol):
    """A deal source that can say which of some deals are no longer won (reconciliation
    reports an invoiced deal that was lost afterwards)."""

    def not_won(self, deal_ids: Sequence[str]) -> Mapping[str, str]:
        """Of these deals, those not closed-won now, each with what it is instead (its
        stage, e.g. "Closed Lost", or "not found" when deleted). Raises ConnectorError."""
        ...


@runtime_checkable
class EnsuresCustomers(Protocol):
    """An invoice target that finds or creates many customers at once (QuickBooks: one
    name query per 50 and batch creates), instead of one `ensure_customer` call each.

    A target that applies the identity rule itself implements
    `billsync.core.customer_identity.MatchesCustomers` instead, which the engine prefers.
    """

    def ensure_customers(
        self, customers: Sequence[Customer]
    ) -> Mapping[str, Customer | ConnectorError]:
        """One outcome per account id: the customer with ``external_id`` set, or why not."""
        ...


@runtime_checkable
class ReadsInvoicesInBatch(Protocol):
    """An invoice target that reads many invoices per call (QBO: ``Id IN (…)``, 1,000 a
    query); reconciliation otherwise calls `InvoiceTarget.fetch_invoice` per invoice."""

    def fetch_invoices(
        self, external_ids: Sequence[str]
    ) -> Mapping[str, InvoiceRef | ConnectorError]:
        """One outcome per id; a ConnectorError(not_found) for an id that is gone."""
        ...


@runtime_checkable
class ReportsLastCursor(Protocol):
    """A payment feed that knows a later safe position than its last event.

    QBO's change feed reaches back 30 days: after a quiet poll the cursor must still move
    (to the time of the query), or it ages out of the window. Read once the iterator of
    `PaymentFeed.events_since` is exhausted; None: nothing beyond the last event.
    """

    @property
    def last_cursor(self) -> Cursor | None: ...
