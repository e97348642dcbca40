"""Invoice building details through stripe-python 16.1.0: invoice items, pending items,
coupons on lines, decimal quantities, and the HTTP edges (versions, unknown URLs)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
import stripe

from tests.sandbox.stripe_support import StripeEnv, invoice_for, stripe_sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StripeEnv]:
    with stripe_sandbox(tmp_path_factory.mktemp("stripe")) as env:
        yield env


@pytest.fixture
def env(sandbox: StripeEnv) -> StripeEnv:
    sandbox.admin("POST", "reset")
    return sandbox


@pytest.fixture
def client(env: StripeEnv) -> stripe.StripeClient:
    return env.client()


def test_line_discounts_from_coupons(env: StripeEnv, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={})
    ten = client.v1.coupons.create(params={"percent_off": "10", "duration": "once", "name": "10%"})
    five = client.v1.coupons.create(
        params={"amount_off": 500, "currency": "usd", "duration": "once"}
    )
    invoice = client.v1.invoices.create(params={"customer": customer.id})
    invoice = client.v1.invoices.add_lines(
        invoice.id,
        params={
            "lines": [
                {"amount": 9_999, "discounts": [{"coupon": ten.id}]},
                {"amount": 2_000, "discounts": [{"coupon": five.id}]},
                {"amount": 300, "discounts": [{"coupon": five.id}]},
                {"amount": 1_000},
            ]
        },
    )
    amounts = [[d.amount for d in line.discount_amounts] for line in invoice.lines.data]
    assert amounts == [[1_000], [500], [300], []]  # 999.9 -> 1000; never more than the line
    assert invoice.subtotal == 13_299 and invoice.total == 13_299 - 1_800
    assert sum(d.amount for d in invoice.total_discount_amounts) == 1_800
    assert client.v1.coupons.retrieve(five.id).times_redeemed == 2
    with pytest.raises(stripe.InvalidRequestError, match="No such coupon"):
        client.v1.invoices.add_lines(
            invoice.id, params={"lines": [{"amount": 1, "discounts": [{"coupon": "nope"}]}]}
        )


def test_a_bad_line_adds_nothing(env: StripeEnv, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={})
    invoice = client.v1.invoices.create(params={"customer": customer.id})
    product = client.v1.products.create(params={"name": "Thing"})
    with pytest.raises(
        stripe.InvalidRequestError, match="unknown parameter: lines\\[1\\]\\[colour\\]"
    ):
        client.v1.invoices.add_lines(
            invoice.id,
            params={
                "lines": [
                    {"price_data": {"currency": "usd", "product": product.id, "unit_amount": 100}},
                    {"amount": 5, "colour": "red"},  # type: ignore[typeddict-unknown-key]
                ]
            },
        )
    again = client.v1.invoices.retrieve(invoice.id)
    assert (
        again.lines.data == [] and env.state()["prices"] == [] and env.state()["invoiceitems"] == []
    )


def test_invoice_items_and_pending_items(env: StripeEnv, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={})
    price = client.v1.prices.create(
        params={
            "currency": "eur",
            "unit_amount_decimal": "1000.25",
            "product_data": {"name": "Hour"},
        }
    )
    pending = client.v1.invoice_items.create(
        params={"customer": customer.id, "pricing": {"price": price.id}, "quantity_decimal": "2.5"}
    )
    assert pending.invoice is None and pending.amount == 2_501  # 2500.625 -> 2501
    assert pending.quantity_decimal == Decimal("2.5") and pending.quantity == 3
    excluded = client.v1.invoices.create(params={"customer": customer.id, "currency": "eur"})
    assert excluded.lines.data == []  # pending_invoice_items_behavior defaults to exclude
    included = client.v1.invoices.create(
        params={
            "customer": customer.id,
            "currency": "eur",
            "pending_invoice_items_behavior": "include",
        }
    )
    assert [line.parent.invoice_item_details.invoice_item for line in included.lines.data] == [
        pending.id
    ]
    direct = client.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "invoice": excluded.id,
            "unit_amount_decimal": "99.5",
            "quantity": 3,
            "description": "Extra",
        }
    )
    assert direct.amount == 299 and direct.invoice == excluded.id
    refreshed = client.v1.invoices.retrieve(excluded.id)
    assert refreshed.total == 299 and refreshed.lines.data[0].description == "Extra"
    assert refreshed.lines.data[0].pricing.unit_amount_decimal == Decimal("99.5")
    client.v1.invoice_items.delete(direct.id)
    assert client.v1.invoices.retrieve(excluded.id).total == 0
    with pytest.raises(stripe.InvalidRequestError, match="must match the currency"):
        client.v1.invoice_items.create(
            params={"customer": customer.id, "invoice": excluded.id, "amount": 5, "currency": "usd"}
        )
    listed = client.v1.invoice_items.list(params={"invoice": included.id})
    assert [i.id for i in listed.data] == [pending.id]


def test_inactive_and_recurring_prices_are_refused(
    env: StripeEnv, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create(params={})
    invoice = client.v1.invoices.create(params={"customer": customer.id})
    old = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 100, "product_data": {"name": "Old"}}
    )
    client.v1.prices.update(old.id, params={"active": False})
    with pytest.raises(stripe.InvalidRequestError, match="inactive"):
        client.v1.invoices.add_lines(invoice.id, params={"lines": [{"pricing": {"price": old.id}}]})
    monthly = client.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 100,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Sub"},
        }
    )
    with pytest.raises(stripe.InvalidRequestError, match="recurring"):
        client.v1.invoices.add_lines(
            invoice.id, params={"lines": [{"pricing": {"price": monthly.id}}]}
        )


def test_numbers_follow_the_customer_sequence(env: StripeEnv, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"invoice_prefix": "ACME"})
    numbers = []
    for _ in range(2):
        invoice = client.v1.invoices.create(params={"customer": customer.id})
        client.v1.invoices.add_lines(invoice.id, params={"lines": [{"amount": 100}]})
        numbers.append(client.v1.invoices.finalize_invoice(invoice.id).number)
    assert numbers == ["ACME-0001", "ACME-0002"]
    chosen = client.v1.invoices.create(params={"customer": customer.id, "number": "DEAL-006X"})
    assert client.v1.invoices.finalize_invoice(chosen.id).number == "DEAL-006X"
    # A zero-amount invoice is paid as soon as it is finalized.
    assert client.v1.invoices.retrieve(chosen.id).status == "paid"


def test_invoice_list_filters(env: StripeEnv, client: stripe.StripeClient) -> None:
    first = invoice_for(env, client)
    second = invoice_for(env, client)
    client.v1.invoices.void_invoice(second.id)
    open_ = client.v1.invoices.list(params={"status": "open"})
    assert [i.id for i in open_.data] == [first.id]
    mine = client.v1.invoices.list(params={"customer": second.customer})
    assert [i.id for i in mine.data] == [second.id]
    with pytest.raises(stripe.InvalidRequestError, match="status"):
        client.v1.invoices.list(params={"status": "lost"})  # type: ignore[typeddict-item]


def test_http_edges(env: StripeEnv) -> None:
    ok = env.raw("GET", "/v1/customers", headers={"Stripe-Version": "2026-10-28.endive"})
    assert ok.status_code == 200 and ok.headers["Request-Id"].startswith("req_")
    assert ok.headers["Stripe-Version"] == "2026-10-28.endive"
    bad = env.raw("GET", "/v1/customers", headers={"Stripe-Version": "yesterday"})
    assert bad.status_code == 400 and "Invalid Stripe API version" in bad.json()["error"]["message"]
    old = env.raw("GET", "/v1/customers", headers={"Stripe-Version": "2024-06-20"})
    assert old.status_code == 400 and "not emulated" in old.json()["error"]["message"]
    nowhere = env.raw("GET", "/v1/nowhere")
    assert (
        nowhere.status_code == 404
        and "Unrecognized request URL (GET: /v1/nowhere)" in nowhere.json()["error"]["message"]
    )
    wrong_method = env.raw("DELETE", "/v1/invoices/in_x/send")
    assert wrong_method.status_code == 404
    unauthenticated = env.raw("GET", "/v1/customers", headers={"Authorization": ""})
    assert (
        unauthenticated.status_code == 401
        and "did not provide an API key" in unauthenticated.json()["error"]["message"]
    )
    form = env.raw(
        "POST",
        "/v1/customers",
        data="metadata[a]=1&metadata=2",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 400 and form.json()["error"]["type"] == "invalid_request_error"


def test_hosted_invoice_page(env: StripeEnv, client: stripe.StripeClient) -> None:
    invoice = invoice_for(env, client)
    page = requests.get(invoice.hosted_invoice_url, timeout=5)
    assert page.status_code == 200 and invoice.number in page.text


def _sent(client: stripe.StripeClient) -> list[str]:
    return [e.data.object["id"] for e in client.v1.events.list(params={"type": "invoice.sent"})]


def test_auto_advance_emails_send_invoice_invoices_per_the_setting(
    env: StripeEnv, client: stripe.StripeClient
) -> None:
    """Automatic advancement emails a finalized send_invoice invoice when the account's
    email setting is on: `invoice.sent` fires once, from finalize (no sent timestamp on
    the invoice; status_transitions has none). A send on an auto-advancing draft is one
    email, not two; without auto_advance finalize emails nothing."""
    emailed = invoice_for(env, client, auto_advance=True)
    assert emailed.auto_advance is True and emailed.status == "open"
    assert set(emailed.status_transitions.to_dict()) == {
        "finalized_at",
        "marked_uncollectible_at",
        "paid_at",
        "voided_at",
    }
    quiet = invoice_for(env, client)
    assert _sent(client) == [emailed.id]
    draft = client.v1.invoices.create(
        params={
            "customer": quiet.customer,
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "auto_advance": True,
        }
    )
    client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": 500}]})
    client.v1.invoices.send_invoice(draft.id)
    assert _sent(client) == [draft.id, emailed.id]
    state = env.runner.sandbox.systems["stripe"].state
    state.email_finalized_invoices = False
    try:
        invoice_for(env, client, auto_advance=True)
    finally:
        state.email_finalized_invoices = True
    assert len(_sent(client)) == 2


def test_search_quotes_escape_with_a_backslash(env: StripeEnv, client: stripe.StripeClient) -> None:
    made = client.v1.customers.create(params={"metadata": {"account": "O'Hara \\ Co"}})
    env.advance(120)  # past the search lag
    query = "metadata['account']:'O\\'Hara \\\\ Co' OR metadata['account']:'none'"
    assert [c.id for c in client.v1.customers.search(params={"query": query}).data] == [made.id]
