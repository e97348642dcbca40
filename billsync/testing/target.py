"""The contract every invoice target passes, with its payment feed and webhook verifier
(billsync.core.protocols: InvoiceTarget, PaymentFeed, WebhookVerifier)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from billsync.core.canonical import Customer, InvoiceRef, PaymentEvent
from billsync.core.protocols import (
    ConnectorError,
    EnsuresCustomers,
    ErrorClass,
    InvoiceTarget,
    PaymentFeed,
    WebhookRejected,
    WebhookRejectReason,
    WebhookVerifier,
)
from billsync.testing.checks import (
    assert_auth,
    assert_retryable,
    drain_feed,
    feed_of,
    named,
    new_deal_id,
    paid_in_read,
    target_of,
    webhooks_of,
)
from billsync.testing.harness import TargetHarness

__all__ = ["InvoiceTargetContract"]


class InvoiceTargetContract:
    """Subclass as ``TestXxxTarget(InvoiceTargetContract)`` and override ``harness``."""

    @pytest.fixture
    def harness(self) -> Iterator[TargetHarness]:
        raise NotImplementedError("override the `harness` fixture with the connector's harness")

    def test_entry_point_builds_target_feed_and_webhooks(self, harness: TargetHarness) -> None:
        parts = harness.build()
        assert isinstance(target_of(parts), InvoiceTarget)
        assert isinstance(feed_of(parts), PaymentFeed)
        assert isinstance(webhooks_of(parts), WebhookVerifier)
        # The engine keys targets and feeds by connector name; drafts name the target.
        assert target_of(parts).target == harness.name
        assert feed_of(parts).provider == harness.name
        assert webhooks_of(parts).provider == harness.name

    def test_customers_are_ensured_once(self, harness: TargetHarness) -> None:
        target = target_of(harness.build())
        first = target.ensure_customer(harness.customer())
        assert first.external_id
        assert target.ensure_customer(harness.customer()).external_id == first.external_id
        other_process = target_of(harness.build())
        assert other_process.ensure_customer(harness.customer()).external_id == first.external_id

    def test_customers_in_batch_are_ensured_once(self, harness: TargetHarness) -> None:
        """Optional ability `EnsuresCustomers`: an outcome per account, the customer that
        `ensure_customer` finds, and the same again from another process."""
        target = target_of(harness.build())
        if not isinstance(target, EnsuresCustomers):
            pytest.skip("the target has no batch path for customers (optional: EnsuresCustomers)")
        wanted = harness.customer()
        first = target.ensure_customers([wanted])
        assert set(first) == {wanted.account_id}
        made = first[wanted.account_id]
        assert isinstance(made, Customer) and made.external_id, made
        assert target.ensure_customer(wanted).external_id == made.external_id
        other_process = target_of(harness.build())
        assert isinstance(other_process, EnsuresCustomers)
        again = other_process.ensure_customers([wanted])[wanted.account_id]
        assert isinstance(again, Customer) and again.external_id == made.external_id, again

    def test_create_is_idempotent(self, harness: TargetHarness) -> None:
        target = target_of(harness.build())
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
        after_restart = target_of(harness.build()).create_invoice(draft)  # a new process
        assert after_restart.external_id == created.external_id
        assert harness.invoices_in_backend(deal) == 1

    def test_batch_create_reports_each_deal_once(self, harness: TargetHarness) -> None:
        target = target_of(harness.build())
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
        crashed = target_of(harness.build())
        deal = new_deal_id()
        created = crashed.create_invoice(
            harness.draft(deal, crashed.ensure_customer(harness.customer()))
        )
        # A new process knows nothing of that attempt but the deal id.
        restarted = target_of(harness.build())
        found = restarted.find_invoices(deal)
        assert [ref.external_id for ref in found] == [created.external_id]
        assert restarted.find_invoices(new_deal_id()) == []

    def test_fetch_invoice_and_not_found(self, harness: TargetHarness) -> None:
        target = target_of(harness.build())
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
        target, feed = target_of(parts), feed_of(parts)
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
        fresh, _ = drain_feed(feed_of(harness.build()), stored)
        assert [e for e in fresh if e.event_id not in seen] == []

    def test_signed_webhooks_verify_and_name_the_paid_invoice(self, harness: TargetHarness) -> None:
        parts = harness.build()
        target, feed, verifier = target_of(parts), feed_of(parts), webhooks_of(parts)
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
        feed = feed_of(harness.build())
        assert feed.read_invoice_money([harness.missing_invoice_id]) == {}

    def test_webhook_rejections(self, harness: TargetHarness) -> None:
        parts = harness.build()
        target, verifier = target_of(parts), webhooks_of(parts)
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
                webhooks_of(harness.build_with_wrong_webhook_secret()),
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
        target, feed = target_of(parts), feed_of(parts)
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
            assert_retryable(caught.value, harness.sleeps, name)
        harness.clear_faults()
        target.create_invoice(draft)  # the same key: still exactly one invoice
        assert harness.invoices_in_backend(draft.deal_id) == 1

    def test_bad_credentials_are_auth_and_not_retried(self, harness: TargetHarness) -> None:
        target = target_of(harness.build_with_bad_credentials())
        harness.sleeps.clear()
        with pytest.raises(ConnectorError) as caught:
            target.find_invoices(new_deal_id())
        assert_auth(caught.value, harness.sleeps)
