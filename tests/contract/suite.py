"""The shared connector contract: what every deal source and invoice target must do.

A connector package runs this suite by subclassing `DealSourceContract` or
`InvoiceTargetContract` in a ``Test…`` class and providing a ``harness`` fixture (see
`SourceHarness` / `TargetHarness`): an object that builds the connector *through its
entry point* against a test backend (a sandbox, a vendor test account, a local fake)
and makes things happen there — seed deals, pay an invoice, hand over the webhooks the
backend signed. The tests themselves know nothing about any vendor.

What is checked (DESIGN.md "Exactly once", "Errors", "Webhooks"; billsync/core/protocols.py):
- the entry point loads and builds the parts the role needs;
- sources: pull from no cursor, then from the returned cursor (nothing new), then a
  changed deal comes back with a newer revision; ``pull`` and ``pull_deals`` agree;
  write-back reports per-deal outcomes;
- targets: customers and invoices are created exactly once (same draft twice, batch,
  a second process); ``find_invoices`` sees what an earlier process created; fetch,
  and not_found for an unknown invoice;
- payment feeds: a payment made in the backend is reported once (one money fact, the
  whole amount); a read from the stored cursor brings no new fact (a replay of events
  already seen is allowed: the ledger dedupes on event id);
- webhooks: a request the backend signed verifies and resolves to the payment; a
  tampered body, a missing signature and the wrong secret are rejected;
- errors: server errors surface as retryable `ConnectorError`s after bounded in-call
  retries (and the connector works again once they stop); bad credentials are
  ``auth``, raised without retrying.

A harness that cannot do something must fail loudly (STYLE.md 8), never pass quietly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import pytest

from billsync.config.settings import Settings
from billsync.core import plugins
from billsync.core.canonical import (
    Customer,
    Deal,
    DealWriteBack,
    InvoiceDraft,
    InvoiceRef,
    InvoiceStatus,
    PaymentEvent,
)
from billsync.core.money_state import derive
from billsync.core.plugins import BuildContext, ConnectorParts, SourceConnector
from billsync.core.protocols import (
    ConnectorError,
    Cursor,
    ErrorClass,
    InvoiceTarget,
    PaymentFeed,
    WebhookRejected,
    WebhookRejectReason,
    WebhookVerifier,
)

__all__ = [
    "DealSourceContract",
    "InvoiceTargetContract",
    "SignedRequest",
    "SourceHarness",
    "TargetHarness",
    "build_connector",
    "drain_feed",
]

_deal_numbers = itertools.count(1)


@dataclass(frozen=True)
class SignedRequest:
    """A webhook request exactly as the backend sent it."""

    body: bytes
    headers: dict[str, str]


class SourceHarness(Protocol):
    """Builds a deal source against a test backend and changes deals there."""

    name: str
    """The entry-point name (what ``sync.source`` says)."""
    sleeps: list[float]
    """Every back-off the built connectors asked for (``BuildContext.sleep``)."""

    def build(self) -> ConnectorParts:
        """Through the entry point (`build_connector`), tiny retry counts, ``sleep``
        recording into ``sleeps``. Each call is a fresh process's connector."""
        ...

    def build_with_bad_credentials(self) -> ConnectorParts: ...

    def seed_deals(self, count: int) -> list[str]:
        """Put ``count`` closed-won deals in the backend; their ids."""
        ...

    def change_deal(self, deal_id: str) -> None:
        """Change the deal so that the source must report it again (newer revision)."""
        ...

    def written_invoice_number(self, deal_id: str) -> str | None:
        """The invoice number the last write-back left on the deal in the backend."""
        ...

    def inject_server_errors(self) -> None:
        """Make every call to the backend fail with a 5xx until `clear_faults`."""
        ...

    def clear_faults(self) -> None: ...


class TargetHarness(Protocol):
    """Builds an invoice target (+ feed + webhooks) and makes money move in its backend."""

    name: str
    """The entry-point name (what ``sync.targets`` lists, and drafts' ``target``)."""
    sleeps: list[float]
    missing_invoice_id: str
    """A well-formed invoice id that does not exist in the backend."""

    def build(self) -> ConnectorParts: ...

    def build_with_bad_credentials(self) -> ConnectorParts: ...

    def build_with_wrong_webhook_secret(self) -> ConnectorParts: ...

    def customer(self) -> Customer:
        """A customer as the mapping would produce it for this target (no external id)."""
        ...

    def draft(self, deal_id: str, customer: Customer) -> InvoiceDraft:
        """A valid draft for the deal as the mapping would produce it (item refs that
        exist in the backend, the target's reference fields, the idempotency key)."""
        ...

    def invoices_in_backend(self, deal_id: str) -> int:
        """How many invoices the backend holds for the deal (read directly, not through
        the connector)."""
        ...

    def pay_in_full(self, invoice: InvoiceRef) -> None:
        """Pay the invoice in the backend, out of band, as a customer would."""
        ...

    def signed_webhooks(self) -> list[SignedRequest]:
        """Every webhook request the backend has signed since the test began."""
        ...

    def inject_server_errors(self) -> None: ...

    def clear_faults(self) -> None: ...


# --- helpers for harnesses and tests -------------------------------------------------


def build_connector(name: str, settings: Settings, context: BuildContext) -> ConnectorParts:
    """Build a connector exactly as billsync does: find its spec by entry point, build it
    from its own settings section."""
    spec = plugins.discover([name], config_key="contract tests")[name]
    parts = spec.build(settings.connector(name), context)
    assert isinstance(parts, ConnectorParts), f"{name}: build() returned {type(parts).__name__}"
    return parts


def drain_feed(feed: PaymentFeed, since: Cursor | None) -> tuple[list[PaymentEvent], Cursor | None]:
    """Read the feed to the end; the events and the cursor the engine would store (the
    last item's, or the feed's ``last_cursor`` when it has one: quiet periods move it)."""
    events: list[PaymentEvent] = []
    last = since
    for checkpointed in feed.events_since(since):
        assert isinstance(checkpointed.cursor, str) and checkpointed.cursor
        events.append(checkpointed.item)
        last = checkpointed.cursor
    return events, getattr(feed, "last_cursor", None) or last


def new_deal_id() -> str:
    """A fresh Salesforce-shaped deal id (≤ 21 characters: fits QBO's DocNumber)."""
    return f"006CT{next(_deal_numbers):010d}AAA"


def named(events: Iterable[PaymentEvent], invoice: InvoiceRef) -> list[PaymentEvent]:
    """The hints that name the invoice (events say what changed; the read says how)."""
    return [e for e in events if e.invoice_external_id == invoice.external_id]


def paid_in_read(feed: PaymentFeed, invoice: InvoiceRef) -> Decimal:
    """Money applied to the invoice as the target reads it now (one row per fact)."""
    read = feed.read_invoice_money([invoice.external_id])[invoice.external_id]
    state = derive(
        currency=read.currency,
        document_status=read.status,
        net=read.net,
        tax=read.tax,
        total=read.total,
        facts=read.facts,
    )
    assert state.balance_due == (read.reported_balance or 0), "the facts explain the balance"
    return state.paid


def _source(parts: ConnectorParts) -> SourceConnector:
    assert parts.source is not None, f"the connector provides {parts.provides()}, not a source"
    return parts.source


def _target(parts: ConnectorParts) -> InvoiceTarget:
    assert parts.target is not None, f"the connector provides {parts.provides()}, not a target"
    return parts.target


def _feed(parts: ConnectorParts) -> PaymentFeed:
    assert parts.feed is not None, f"the connector provides {parts.provides()}, not a feed"
    return parts.feed


def _webhooks(parts: ConnectorParts) -> WebhookVerifier:
    assert parts.webhooks is not None, "no webhook verifier (is a webhook secret configured?)"
    return parts.webhooks


def _deal_key(item: Any) -> str:
    return str(item.id if isinstance(item, Deal) else item.deal_id)


# --- deal sources ----------------------------------------------------------------------


class DealSourceContract:
    """Subclass as ``TestXxxSource(DealSourceContract)`` and override ``harness``."""

    @pytest.fixture
    def harness(self) -> Iterator[SourceHarness]:
        raise NotImplementedError("override the `harness` fixture with the connector's harness")

    def test_entry_point_builds_a_deal_source(self, harness: SourceHarness) -> None:
        parts = harness.build()
        source = _source(parts)
        assert isinstance(source, SourceConnector)
        assert source.system

    def test_pull_with_cursor_round_trip(self, harness: SourceHarness) -> None:
        seeded = harness.seed_deals(6)
        source = _source(harness.build())
        first = list(source.pull(None))
        assert {_deal_key(c.item) for c in first} == set(seeded)
        assert all(isinstance(c.cursor, str) and c.cursor for c in first)
        deals = [c.item for c in first if isinstance(c.item, Deal)]
        assert deals, "the harness seeded no readable deal"
        assert [c.item for c in source.pull_deals(None)] == deals  # the same, minus rejections
        seen = {(d.id, d.revision) for d in deals}
        cursor = first[-1].cursor

        again = [c.item for c in source.pull(cursor) if isinstance(c.item, Deal)]
        assert [(d.id, d.revision) for d in again if (d.id, d.revision) not in seen] == []

        changed = deals[0]
        harness.change_deal(changed.id)
        later = [c.item for c in source.pull(cursor) if isinstance(c.item, Deal)]
        revisions = [d.revision for d in later if d.id == changed.id]
        assert revisions, "a deal changed after the cursor did not come back"
        assert max(revisions) > changed.revision

    def test_write_back_reports_per_deal_outcomes(self, harness: SourceHarness) -> None:
        harness.seed_deals(2)
        source = _source(harness.build())
        deal = next(c.item for c in source.pull(None) if isinstance(c.item, Deal))
        update = DealWriteBack(
            deal_id=deal.id,
            target="contract",
            invoice_external_id=f"inv-{deal.id}",
            invoice_number="CT-0001",
            status=InvoiceStatus.OPEN,
            billing_status="Invoiced",
            currency=deal.currency,
            amount_paid=Decimal(0),
            balance=deal.amount,
        )
        assert source.write_back([update]) == {}
        assert harness.written_invoice_number(deal.id) == "CT-0001"
        assert source.write_back([]) == {}

    def test_server_errors_are_retryable_after_bounded_retries(
        self, harness: SourceHarness
    ) -> None:
        harness.seed_deals(2)
        source = _source(harness.build())
        assert list(source.pull(None))  # signed in before the backend breaks
        harness.inject_server_errors()
        harness.sleeps.clear()
        with pytest.raises(ConnectorError) as caught:
            list(source.pull(None))
        _assert_retryable(caught.value, harness.sleeps)
        harness.clear_faults()
        assert list(source.pull(None))

    def test_bad_credentials_are_auth_and_not_retried(self, harness: SourceHarness) -> None:
        harness.seed_deals(1)
        source = _source(harness.build_with_bad_credentials())
        harness.sleeps.clear()
        with pytest.raises(ConnectorError) as caught:
            list(source.pull(None))
        _assert_auth(caught.value, harness.sleeps)


# --- invoice targets, payment feeds, webhook verifiers ----------------------------------


class InvoiceTargetContract:
    """Subclass as ``TestXxxTarget(InvoiceTargetContract)`` and override ``harness``."""

    @pytest.fixture
    def harness(self) -> Iterator[TargetHarness]:
        raise NotImplementedError("override the `harness` fixture with the connector's harness")

    def test_entry_point_builds_target_feed_and_webhooks(self, harness: TargetHarness) -> None:
        parts = harness.build()
        assert isinstance(_target(parts), InvoiceTarget)
        assert isinstance(_feed(parts), PaymentFeed)
        assert isinstance(_webhooks(parts), WebhookVerifier)
        # The engine keys targets and feeds by connector name; drafts name the target.
        assert _target(parts).target == harness.name
        assert _feed(parts).provider == harness.name
        assert _webhooks(parts).provider == harness.name

    def test_customers_are_ensured_once(self, harness: TargetHarness) -> None:
        target = _target(harness.build())
        first = target.ensure_customer(harness.customer())
        assert first.external_id
        assert target.ensure_customer(harness.customer()).external_id == first.external_id
        other_process = _target(harness.build())
        assert other_process.ensure_customer(harness.customer()).external_id == first.external_id

    def test_create_is_idempotent(self, harness: TargetHarness) -> None:
        target = _target(harness.build())
        deal = new_deal_id()
        draft = harness.draft(deal, target.ensure_customer(harness.customer()))
        created = target.create_invoice(draft)
        assert (created.target, created.currency, created.total) == (
            harness.name,
            draft.currency,
            draft.total,
        )
        again = target.create_invoice(draft)
        assert again.external_id == created.external_id
        after_restart = _target(harness.build()).create_invoice(draft)  # a new process
        assert after_restart.external_id == created.external_id
        assert harness.invoices_in_backend(deal) == 1

    def test_batch_create_reports_each_deal_once(self, harness: TargetHarness) -> None:
        target = _target(harness.build())
        buyer = target.ensure_customer(harness.customer())
        drafts = [harness.draft(new_deal_id(), buyer) for _ in range(3)]
        outcomes = target.create_invoices(drafts)
        assert set(outcomes) == {d.deal_id for d in drafts}
        refs = [outcomes[d.deal_id] for d in drafts]
        assert all(isinstance(ref, InvoiceRef) for ref in refs), refs
        assert len({ref.external_id for ref in refs if isinstance(ref, InvoiceRef)}) == 3
        again = target.create_invoices(drafts)
        assert {k: v.external_id for k, v in again.items() if isinstance(v, InvoiceRef)} == {
            k: v.external_id for k, v in outcomes.items() if isinstance(v, InvoiceRef)
        }
        assert [harness.invoices_in_backend(d.deal_id) for d in drafts] == [1, 1, 1]

    def test_lookup_before_create_sees_an_earlier_attempt(self, harness: TargetHarness) -> None:
        crashed = _target(harness.build())
        deal = new_deal_id()
        created = crashed.create_invoice(
            harness.draft(deal, crashed.ensure_customer(harness.customer()))
        )
        # A new process knows nothing of that attempt but the deal id.
        restarted = _target(harness.build())
        found = restarted.find_invoices(deal)
        assert [ref.external_id for ref in found] == [created.external_id]
        assert restarted.find_invoices(new_deal_id()) == []

    def test_fetch_invoice_and_not_found(self, harness: TargetHarness) -> None:
        target = _target(harness.build())
        created = target.create_invoice(
            harness.draft(new_deal_id(), target.ensure_customer(harness.customer()))
        )
        fetched = target.fetch_invoice(created.external_id)
        assert (fetched.external_id, fetched.total) == (created.external_id, created.total)
        with pytest.raises(ConnectorError) as caught:
            target.fetch_invoice(harness.missing_invoice_id)
        assert caught.value.error_class is ErrorClass.NOT_FOUND

    def test_payment_feed_names_the_paid_invoice_once(self, harness: TargetHarness) -> None:
        """After a payment the feed names the invoice, its read shows the payment once, and
        a replay from the stored cursor names it no more."""
        parts = harness.build()
        target, feed = _target(parts), _feed(parts)
        invoice = target.create_invoice(
            harness.draft(new_deal_id(), target.ensure_customer(harness.customer()))
        )
        _, cursor = drain_feed(feed, None)
        harness.pay_in_full(invoice)

        events, stored = drain_feed(feed, cursor)
        assert named(events, invoice), "the feed did not name the paid invoice"
        assert paid_in_read(feed, invoice) == invoice.total
        assert all(e.provider == harness.name for e in events)
        seen = {e.event_id for e in events}

        replay, _ = drain_feed(feed, stored)
        new = [e for e in replay if e.event_id not in seen]
        assert named(new, invoice) == []
        # Another process, from the stored cursor, sees nothing new either.
        fresh, _ = drain_feed(_feed(harness.build()), stored)
        assert [e for e in fresh if e.event_id not in seen] == []

    def test_signed_webhooks_verify_and_name_the_paid_invoice(self, harness: TargetHarness) -> None:
        parts = harness.build()
        target, feed, verifier = _target(parts), _feed(parts), _webhooks(parts)
        invoice = target.create_invoice(
            harness.draft(new_deal_id(), target.ensure_customer(harness.customer()))
        )
        harness.pay_in_full(invoice)
        requests = harness.signed_webhooks()
        assert requests, "the backend signed no webhook"
        events: list[PaymentEvent] = []
        for request in requests:
            for note in verifier.verify(request.body, request.headers):
                assert note.provider == harness.name and note.event_id
                events.extend(feed.resolve(note))
        assert named(events, invoice), "no webhook named the paid invoice"
        assert paid_in_read(feed, invoice) == invoice.total

    def test_read_of_an_unknown_invoice_is_empty(self, harness: TargetHarness) -> None:
        feed = _feed(harness.build())
        assert feed.read_invoice_money([harness.missing_invoice_id]) == {}

    def test_webhook_rejections(self, harness: TargetHarness) -> None:
        parts = harness.build()
        target, verifier = _target(parts), _webhooks(parts)
        target.create_invoice(
            harness.draft(new_deal_id(), target.ensure_customer(harness.customer()))
        )
        request = harness.signed_webhooks()[-1]
        assert verifier.verify(request.body, request.headers)
        tampered = request.body.replace(b"}", b" }", 1)
        assert tampered != request.body
        cases = [
            (verifier, tampered, request.headers, WebhookRejectReason.BAD_SIGNATURE),
            (verifier, request.body, {}, WebhookRejectReason.MISSING_SIGNATURE),
            (
                _webhooks(harness.build_with_wrong_webhook_secret()),
                request.body,
                request.headers,
                WebhookRejectReason.BAD_SIGNATURE,
            ),
        ]
        for check, body, headers, reason in cases:
            with pytest.raises(WebhookRejected) as caught:
                check.verify(body, headers)
            assert caught.value.reason is reason
            # A refusal is a 4xx the provider retries later, never a 2xx or a 5xx
            # (Stripe's convention is 400, Intuit's 401).
            assert caught.value.http_status in (400, 401)

    def test_server_errors_are_retryable_after_bounded_retries(
        self, harness: TargetHarness
    ) -> None:
        parts = harness.build()
        target, feed = _target(parts), _feed(parts)
        draft = harness.draft(new_deal_id(), target.ensure_customer(harness.customer()))
        assert target.find_invoices(draft.deal_id) == []  # signed in before the backend breaks
        harness.inject_server_errors()
        calls: list[tuple[str, Any]] = [
            ("find_invoices", lambda: target.find_invoices(draft.deal_id)),
            ("create_invoice", lambda: target.create_invoice(draft)),
            ("events_since", lambda: list(feed.events_since(None))),
        ]
        for name, call in calls:
            harness.sleeps.clear()
            with pytest.raises(ConnectorError) as caught:
                call()
            _assert_retryable(caught.value, harness.sleeps, name)
        harness.clear_faults()
        target.create_invoice(draft)  # the same key: still exactly one invoice
        assert harness.invoices_in_backend(draft.deal_id) == 1

    def test_bad_credentials_are_auth_and_not_retried(self, harness: TargetHarness) -> None:
        target = _target(harness.build_with_bad_credentials())
        harness.sleeps.clear()
        with pytest.raises(ConnectorError) as caught:
            target.find_invoices(new_deal_id())
        _assert_auth(caught.value, harness.sleeps)


def _assert_retryable(error: ConnectorError, sleeps: list[float], call: str = "pull") -> None:
    assert error.is_retryable, f"{call}: {error!r} should be transient or rate_limited"
    assert error.message and error.system
    assert sleeps, f"{call}: the connector gave up without retrying in-call"
    assert len(sleeps) < 10, f"{call}: {len(sleeps)} back-offs: retries must be bounded"


def _assert_auth(error: ConnectorError, sleeps: list[float]) -> None:
    assert error.error_class is ErrorClass.AUTH, repr(error)
    assert not error.is_retryable
    assert sleeps == [], "bad credentials must not be retried (it only hammers the provider)"
