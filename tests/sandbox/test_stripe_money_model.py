"""The Stripe sandbox's money model through stripe-python 16: tax rates and automatic
tax, includable fields, failed refunds, dispute inquiries and funds events."""

from __future__ import annotations

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
    with stripe_sandbox(tmp_path_factory.mktemp("stripe-money"), webhook_url=hooks.url) as env:
        yield env


@pytest.fixture
def env(sandbox: StripeEnv, hooks: Receiver) -> StripeEnv:
    sandbox.admin("POST", "reset")
    hooks.received.clear()
    return sandbox


@pytest.fixture
def client(env: StripeEnv) -> stripe.StripeClient:
    return env.client()


def rate(client: stripe.StripeClient, percentage: str, inclusive: bool = False) -> str:
    made = client.v1.tax_rates.create(
        params={"display_name": "VAT", "percentage": percentage, "inclusive": inclusive}
    )
    return str(made.id)


def test_default_tax_rates_exclusive_and_line_override(client: stripe.StripeClient) -> None:
    vat, reduced = rate(client, "19"), rate(client, "7")
    customer = client.v1.customers.create(params={"email": "t@example.com"})
    inv = client.v1.invoices.create(
        params={"customer": customer.id, "currency": "eur", "default_tax_rates": [vat]}
    )
    client.v1.invoices.add_lines(
        inv.id,
        params={
            "lines": [
                {"amount": 10_000, "description": "default rate"},
                {"amount": 5_000, "description": "own rate", "tax_rates": [reduced]},
            ]
        },
    )
    final = client.v1.invoices.finalize_invoice(inv.id)
    # 19 % of 100.00 + 7 % of 50.00, exclusive: added to the total.
    assert (final.subtotal, final.total_excluding_tax, final.total) == (15_000, 15_000, 17_250)
    assert final.amount_due == 17_250
    by_rate = {t.tax_rate_details.tax_rate: t.amount for t in final.total_taxes}
    assert by_rate == {vat: 1_900, reduced: 350}
    assert [t.tax_behavior for t in final.total_taxes] == ["exclusive", "exclusive"]


def test_inclusive_tax_leaves_the_total(client: stripe.StripeClient) -> None:
    included = rate(client, "20", inclusive=True)
    customer = client.v1.customers.create(params={"email": "i@example.com"})
    inv = client.v1.invoices.create(
        params={"customer": customer.id, "currency": "gbp", "default_tax_rates": [included]}
    )
    client.v1.invoices.add_lines(inv.id, params={"lines": [{"amount": 12_000}]})
    final = client.v1.invoices.finalize_invoice(inv.id)
    assert (final.total, final.total_excluding_tax) == (12_000, 10_000)
    assert final.total_taxes[0].amount == 2_000 and final.total_taxes[0].taxable_amount == 10_000


def test_automatic_tax_needs_a_location_and_uses_the_table(client: stripe.StripeClient) -> None:
    nowhere = client.v1.customers.create(params={"email": "n@example.com"})
    inv = client.v1.invoices.create(
        params={"customer": nowhere.id, "automatic_tax": {"enabled": True}}
    )
    client.v1.invoices.add_lines(inv.id, params={"lines": [{"amount": 10_000}]})
    assert client.v1.invoices.retrieve(inv.id).automatic_tax.status == "requires_location_inputs"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.invoices.finalize_invoice(inv.id)
    assert caught.value.code == "customer_tax_location_invalid"
    client.v1.customers.update(
        nowhere.id, params={"address": {"country": "US", "state": "CA", "line1": "1 Main"}}
    )
    final = client.v1.invoices.finalize_invoice(inv.id)  # 7.25 % in the sandbox's table
    assert (final.total_excluding_tax, final.total) == (10_000, 10_725)
    assert final.automatic_tax.status == "complete"
    with pytest.raises(stripe.InvalidRequestError, match="automatic tax"):
        client.v1.invoices.create(
            params={
                "customer": nowhere.id,
                "automatic_tax": {"enabled": True},
                "default_tax_rates": [rate(client, "5")],
            }
        )


def test_includable_fields_only_when_expanded(env: StripeEnv, client: stripe.StripeClient) -> None:
    inv = invoice_for(env, client)
    env.admin("POST", f"stripe/invoices/{inv.id}/pay")
    env.admin("POST", f"stripe/invoices/{inv.id}/refund", {"amount": 100})
    plain = client.v1.invoices.retrieve(inv.id)
    assert "payments" not in plain
    expanded = client.v1.invoices.retrieve(
        inv.id, params={"expand": ["payments", "payments.data.payment.payment_intent"]}
    )
    intent = expanded.payments.data[0].payment.payment_intent
    assert intent.status == "succeeded"
    charges = client.v1.charges.list(params={"payment_intent": intent.id})
    assert "refunds" not in charges.data[0]
    with_refunds = client.v1.charges.list(
        params={"payment_intent": intent.id, "expand": ["data.refunds"]}
    )
    assert [r.amount for r in with_refunds.data[0].refunds.data] == [100]


def test_refund_fails_and_disputes_move_funds(
    env: StripeEnv, client: stripe.StripeClient, hooks: Receiver
) -> None:
    inv = invoice_for(env, client)
    env.admin("POST", f"stripe/invoices/{inv.id}/pay")
    made = env.admin("POST", f"stripe/invoices/{inv.id}/refund", {"amount": 2_500})["refund"]
    failed = env.admin("POST", f"stripe/refunds/{made['id']}/fail")
    assert failed["refund"]["status"] == "failed" and failed["charge"]["amount_refunded"] == 0
    hooks.wait_for("charge.refund.updated")
    assert client.v1.invoices.retrieve(inv.id).status == "paid"
    env.admin("POST", f"stripe/refunds/{made['id']}/fail", expect=400)
    inquiry = env.admin("POST", f"stripe/invoices/{inv.id}/dispute", {"inquiry": True})
    assert inquiry["status"] == "warning_needs_response"
    env.admin("POST", f"stripe/disputes/{inquiry['id']}/update", {"status": "needs_response"})
    hooks.wait_for("charge.dispute.funds_withdrawn")
    env.admin("POST", f"stripe/disputes/{inquiry['id']}/close", {"status": "won"})
    hooks.wait_for("charge.dispute.funds_reinstated")
    assert client.v1.disputes.retrieve(inquiry["id"]).status == "won"


def test_uncollectible_then_paid(env: StripeEnv, client: stripe.StripeClient) -> None:
    inv = invoice_for(env, client)
    marked = env.admin("POST", f"stripe/invoices/{inv.id}/mark_uncollectible")
    assert marked["status"] == "uncollectible"
    env.admin("POST", f"stripe/invoices/{inv.id}/pay")
    paid = client.v1.invoices.retrieve(inv.id)
    assert (paid.status, paid.amount_remaining) == ("paid", 0)
