"""Payments, refunds, disputes, credit notes, events and signed webhooks, through
unmodified stripe-python 16.1.0 and the Stripe sandbox's admin routes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import stripe

from tests.sandbox.stripe_support import Receiver, StripeEnv, invoice_for, receiver, stripe_sandbox


@pytest.fixture(scope="module")
def hooks() -> Iterator[Receiver]:
    with receiver() as found:
        yield found


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, hooks: Receiver) -> Iterator[StripeEnv]:
    with stripe_sandbox(tmp_path_factory.mktemp("stripe"), webhook_url=hooks.url) as env:
        yield env


@pytest.fixture
def env(sandbox: StripeEnv, hooks: Receiver) -> StripeEnv:
    sandbox.admin("POST", "reset")
    hooks.received.clear()
    return sandbox


@pytest.fixture
def client(env: StripeEnv) -> stripe.StripeClient:
    return env.client()


def test_pay_sends_a_verified_invoice_paid_webhook(
    env: StripeEnv, client: stripe.StripeClient, hooks: Receiver
) -> None:
    invoice = invoice_for(env, client, metadata={"deal_id": "006P"})
    env.admin("POST", f"stripe/invoices/{invoice.id}/pay")
    headers, body = hooks.wait_for("invoice.paid")[0]
    event = stripe.Webhook.construct_event(body.decode(), headers["Stripe-Signature"], env.secret)
    assert event.type == "invoice.paid" and event.api_version == "2026-10-28.endive"
    paid = event.data.object
    assert paid.id == invoice.id and paid.status == "paid" and paid.amount_remaining == 0
    assert paid.metadata["deal_id"] == "006P"
    assert event.data.previous_attributes["status"] == "open"
    assert event.request.id is None  # out of band, like a Dashboard action
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.decode(), headers["Stripe-Signature"], "whsec_wrong")
    for kind in (  # delivered concurrently, in no particular order
        "invoice_payment.paid",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
        "charge.succeeded",
    ):
        hooks.wait_for(kind)


def test_webhook_events_are_the_listed_events(
    env: StripeEnv, client: stripe.StripeClient, hooks: Receiver
) -> None:
    customer = client.v1.customers.create(
        params={"email": "w@example.com"}, options={"idempotency_key": "k-1"}
    )
    headers, body = hooks.wait_for("customer.created")[0]
    event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], env.secret)
    listed = client.v1.events.retrieve(event.id)
    assert listed.data.object.id == customer.id
    assert listed.request.idempotency_key == "k-1" and listed.request.id.startswith("req_")
    assert json.loads(body)["data"]["object"]["email"] == "w@example.com"


def test_partial_then_full_payment(
    env: StripeEnv, client: stripe.StripeClient, hooks: Receiver
) -> None:
    invoice = invoice_for(env, client, amount=10_000)
    partial = env.admin("POST", f"stripe/invoices/{invoice.id}/pay", {"amount": 4_000})
    assert (
        partial["invoice"]["status"] == "open" and partial["invoice"]["amount_remaining"] == 6_000
    )
    after_partial = client.v1.invoices.retrieve(invoice.id)
    assert (after_partial.amount_paid, after_partial.amount_remaining) == (4_000, 6_000)
    env.admin("POST", f"stripe/invoices/{invoice.id}/pay", {"amount": 6_000})
    payments = client.v1.invoice_payments.list(params={"invoice": invoice.id})
    paid = [p for p in payments.data if p.status == "paid"]
    assert sorted(p.amount_paid for p in paid) == [4_000, 6_000]
    assert [p.status for p in payments.data if p.is_default] == ["canceled"]
    final = client.v1.invoices.retrieve(invoice.id, params={"expand": ["payments"]})
    assert (final.status, final.amount_paid, final.amount_remaining) == ("paid", 10_000, 0)
    assert sum(p.amount_paid for p in final.payments.data if p.status == "paid") == 10_000
    hooks.wait_for("invoice_payment.paid", count=2)
    # Deliveries are concurrent and unordered, like Stripe's: wait for invoice.paid too.
    assert len(hooks.wait_for("invoice.paid")) == 1
    with pytest.raises(stripe.InvalidRequestError, match="already paid"):
        client.v1.invoices.pay(invoice.id)
    # A PaymentIntent maps back to its invoice only through invoice_payments (basil).
    intent = paid[0].payment.payment_intent
    by_intent = client.v1.invoice_payments.list(
        params={"payment": {"type": "payment_intent", "payment_intent": intent}}
    )
    assert [p.invoice for p in by_intent.data] == [invoice.id]


def test_full_payment_uses_the_default_payment(env: StripeEnv, client: stripe.StripeClient) -> None:
    invoice = invoice_for(env, client, amount=2_500, currency="jpy")
    paid = client.v1.invoices.pay(invoice.id, params={"expand": ["payments"]})
    assert paid.status == "paid" and paid.amount_paid == 2_500
    [payment] = paid.payments.data
    assert payment.is_default and payment.status == "paid" and payment.amount_paid == 2_500


def test_failed_payment(env: StripeEnv, client: stripe.StripeClient, hooks: Receiver) -> None:
    invoice = invoice_for(env, client)
    env.admin("POST", f"stripe/invoices/{invoice.id}/fail")
    hooks.wait_for("invoice.payment_failed")
    hooks.wait_for("payment_intent.payment_failed")
    failed = client.v1.invoices.retrieve(invoice.id, params={"expand": ["payments"]})
    assert failed.status == "open" and failed.attempt_count == 1 and failed.attempted
    intent = client.v1.payment_intents.retrieve(failed.payments.data[0].payment.payment_intent)
    assert (
        intent.status == "requires_payment_method"
        and intent.last_payment_error.code == "card_declined"
    )


def test_refund_and_dispute_events(
    env: StripeEnv, client: stripe.StripeClient, hooks: Receiver
) -> None:
    invoice = invoice_for(env, client, amount=9_000)
    env.admin("POST", f"stripe/invoices/{invoice.id}/pay")
    refunded = env.admin("POST", f"stripe/invoices/{invoice.id}/refund", {"amount": 1_000})
    assert refunded["refund"]["amount"] == 1_000 and refunded["charge"]["amount_refunded"] == 1_000
    _, body = hooks.wait_for("charge.refunded")[0]
    charge = json.loads(body)["data"]["object"]
    assert charge["amount_refunded"] == 1_000 and "invoice" not in charge
    # The SDK's own refund call, by PaymentIntent.
    expanded = client.v1.invoices.retrieve(invoice.id, params={"expand": ["payments"]})
    intent_id = expanded.payments.data[0].payment.payment_intent
    refund = client.v1.refunds.create(
        params={"payment_intent": intent_id, "amount": 500, "reason": "requested_by_customer"}
    )
    assert refund.id.startswith("re_") and refund.status == "succeeded"
    hooks.wait_for("refund.created", count=2)
    with pytest.raises(stripe.InvalidRequestError, match="greater than unrefunded"):
        client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 8_000})

    dispute = env.admin("POST", f"stripe/invoices/{invoice.id}/dispute", {"reason": "fraudulent"})
    assert dispute["id"].startswith("dp_") and dispute["status"] == "needs_response"
    _, body = hooks.wait_for("charge.dispute.created")[0]
    assert json.loads(body)["data"]["object"]["payment_intent"] == intent_id
    env.admin("POST", f"stripe/disputes/{dispute['id']}/close", {"status": "lost"})
    _, body = hooks.wait_for("charge.dispute.closed")[0]
    assert json.loads(body)["data"]["object"]["status"] == "lost"
    assert client.v1.disputes.retrieve(dispute["id"]).status == "lost"
    env.admin("POST", f"stripe/disputes/{dispute['id']}/close", {"status": "won"}, expect=400)


def test_credit_notes(env: StripeEnv, client: stripe.StripeClient, hooks: Receiver) -> None:
    invoice = invoice_for(env, client, amount=10_000)
    note = client.v1.credit_notes.create(
        params={"invoice": invoice.id, "amount": 2_500, "reason": "order_change"}
    )
    assert note.type == "pre_payment" and note.number.endswith("-CN-01")
    reduced = client.v1.invoices.retrieve(invoice.id)
    assert (
        reduced.amount_due,
        reduced.amount_remaining,
        reduced.pre_payment_credit_notes_amount,
    ) == (7_500, 7_500, 2_500)
    client.v1.credit_notes.void_credit_note(note.id)
    restored = client.v1.invoices.retrieve(invoice.id)
    assert restored.amount_remaining == 10_000
    hooks.wait_for("credit_note.voided")
    env.admin("POST", f"stripe/invoices/{invoice.id}/pay")
    after = client.v1.credit_notes.create(
        params={"invoice": invoice.id, "amount": 3_000, "refund_amount": 3_000}
    )
    assert after.type == "post_payment" and after.refunds[0].amount_refunded == 3_000
    hooks.wait_for("charge.refunded")


def test_events_list_filters_and_pagination(env: StripeEnv, client: stripe.StripeClient) -> None:
    customers = [client.v1.customers.create(params={"name": f"n{i}"}) for i in range(5)]
    start = client.v1.events.list(params={"limit": 1}).data[0].created
    env.advance(120)
    client.v1.customers.update(customers[0].id, params={"name": "renamed"})
    products = [client.v1.products.create(params={"name": f"p{i}"}) for i in range(3)]
    created = client.v1.events.list(params={"types": ["customer.created"], "limit": 2})
    assert [e.type for e in created.data] == ["customer.created"] * 2 and created.has_more
    walked = [e.data.object.id for e in created.auto_paging_iter()]
    assert walked == [c.id for c in reversed(customers)]
    recent = client.v1.events.list(params={"created": {"gte": start + 60}, "limit": 100})
    assert [e.type for e in recent.data] == ["product.created"] * 3 + ["customer.updated"]
    assert recent.data[-1].data.previous_attributes.name == "n0"
    wildcard = client.v1.events.list(params={"type": "product.*"})
    assert [e.data.object.id for e in wildcard.data] == [p.id for p in reversed(products)]
    with pytest.raises(stripe.InvalidRequestError, match="at most 20"):
        client.v1.events.list(params={"types": [f"t{i}" for i in range(21)]})
    with pytest.raises(stripe.InvalidRequestError, match="less than or equal to 100"):
        client.v1.events.list(params={"limit": 101})
    # Only 30 days are listed (sandbox clock).
    env.advance(31 * 86400)
    assert client.v1.events.list().data == []
    with pytest.raises(stripe.InvalidRequestError, match="No such event"):
        client.v1.events.retrieve(recent.data[0].id)


def test_invoice_search_and_expand(env: StripeEnv, client: stripe.StripeClient) -> None:
    invoice = invoice_for(env, client, metadata={"deal_id": "006S"})
    query = "metadata['deal_id']:'006S' AND status:'open'"
    assert client.v1.invoices.search(params={"query": query}).data == []
    env.advance(6)
    found = client.v1.invoices.search(params={"query": query})
    assert [i.id for i in found.data] == [invoice.id]
    with pytest.raises(stripe.InvalidRequestError, match="unsupported search field"):
        client.v1.invoices.search(params={"query": "colour:'red'"})
    expanded = client.v1.invoice_payments.list(
        params={"invoice": invoice.id, "expand": ["data.payment.payment_intent"]}
    )
    assert isinstance(expanded.data[0].payment.payment_intent, stripe.PaymentIntent)
    with_customer = client.v1.invoices.retrieve(invoice.id, params={"expand": ["customer"]})
    assert with_customer.customer.email == "payer@example.com"


def test_out_of_band_admin_changes(
    env: StripeEnv, client: stripe.StripeClient, hooks: Receiver
) -> None:
    invoice = invoice_for(env, client)
    env.admin("POST", f"stripe/invoices/{invoice.id}/void")
    hooks.wait_for("invoice.voided")
    assert client.v1.invoices.retrieve(invoice.id).status == "void"
    env.admin("POST", f"stripe/invoices/{invoice.id}/pay", expect=400)
    env.admin("POST", "stripe/invoices/in_missing/pay", expect=404)
    env.admin("POST", f"stripe/customers/{invoice.customer}/delete")
    hooks.wait_for("customer.deleted")
    assert client.v1.customers.retrieve(invoice.customer).deleted is True
    assert env.state()["customers"] == []


def test_seed_and_snapshot(tmp_path_factory: pytest.TempPathFactory) -> None:
    seed = {
        "stripe": {
            "customers": [
                {
                    "id": "cus_seed1",
                    "email": "seed@example.com",
                    "metadata": {"sf_account_id": "001S"},
                }
            ],
            "products": [{"id": "prod_seed", "name": "Seeded"}],
            "prices": [
                {
                    "id": "price_seed",
                    "product": "prod_seed",
                    "currency": "eur",
                    "unit_amount": 4200,
                    "unit_amount_decimal": "4200",
                    "object": "price",
                }
            ],
        }
    }
    with stripe_sandbox(tmp_path_factory.mktemp("seeded"), seed=seed) as env:
        client = env.client()
        # Seeded customers existed before: searchable at once.
        found = client.v1.customers.search(params={"query": "metadata['sf_account_id']:'001S'"})
        assert [c.id for c in found.data] == ["cus_seed1"]
        assert client.v1.prices.retrieve("price_seed").unit_amount == 4200
        state = env.state()
        assert [c["id"] for c in state["customers"]] == ["cus_seed1"]
        assert state["events"] == 0
