"""Contract tests: unmodified stripe-python 16.1.0 against the Stripe sandbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import stripe

from tests.sandbox.stripe_support import StripeEnv, invoice_for, stripe_sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StripeEnv]:
    with stripe_sandbox(tmp_path_factory.mktemp("stripe")) as env:
        yield env


@pytest.fixture
def env(sandbox: StripeEnv) -> StripeEnv:
    sandbox.admin("POST", "reset")
    sandbox.admin("POST", "faults", {})
    return sandbox


@pytest.fixture
def client(env: StripeEnv) -> stripe.StripeClient:
    return env.client()


def test_customer_create_list_by_email_and_search_lag(
    env: StripeEnv, client: stripe.StripeClient
) -> None:
    created = client.v1.customers.create(
        params={"email": "ada@example.com", "name": "Ada", "metadata": {"sf_account_id": "001A"}}
    )
    assert created.id.startswith("cus_") and created.object == "customer" and not created.livemode
    client.v1.customers.create(params={"email": "bob@example.com"})
    listed = client.v1.customers.list(params={"email": "ada@example.com"})
    assert [c.id for c in listed.data] == [created.id]

    query = "metadata['sf_account_id']:'001A'"
    # Search is eventually consistent: nothing yet (search_delay_s = 5 on the sandbox clock).
    assert client.v1.customers.search(params={"query": query}).data == []
    env.advance(6)
    found = client.v1.customers.search(params={"query": query})
    assert found.object == "search_result" and [c.id for c in found.data] == [created.id]
    assert found.has_more is False and found.url == "/v1/customers/search"
    by_email = client.v1.customers.search(params={"query": "email:'ada@example.com'"})
    assert [c.id for c in by_email.data] == [created.id]

    # An update is searchable only after the lag too: the old value is still what matches.
    client.v1.customers.update(created.id, params={"metadata": {"sf_account_id": "001B"}})
    assert [c.id for c in client.v1.customers.search(params={"query": query}).data] == [created.id]
    env.advance(6)
    assert client.v1.customers.search(params={"query": query}).data == []


def test_customer_list_pagination_and_delete(env: StripeEnv, client: stripe.StripeClient) -> None:
    ids = [client.v1.customers.create(params={"name": f"c{i}"}).id for i in range(7)]
    first = client.v1.customers.list(params={"limit": 3})
    assert [c.id for c in first.data] == ids[::-1][:3] and first.has_more
    assert [c.id for c in first.auto_paging_iter()] == ids[::-1]
    before = client.v1.customers.list(params={"limit": 2, "ending_before": ids[2]})
    assert [c.id for c in before.data] == [ids[4], ids[3]] and before.has_more
    deleted = client.v1.customers.delete(ids[0])
    assert deleted.deleted is True
    assert client.v1.customers.retrieve(ids[0]).deleted is True  # Stripe returns the stub
    with pytest.raises(stripe.InvalidRequestError, match="No such customer"):
        client.v1.invoices.create(params={"customer": ids[0]})


def test_invoice_with_eight_lines_in_four_calls(
    env: StripeEnv, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create(params={"email": "buyer@example.com"})
    price = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 1999, "product_data": {"name": "Seat"}}
    )
    env.admin("DELETE", "calls")
    invoice = client.v1.invoices.create(
        params={
            "customer": customer.id,
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "metadata": {"deal_id": "006X"},
            "custom_fields": [{"name": "PO", "value": "PO-42"}],
        }
    )
    lines = [{"pricing": {"price": price.id}, "quantity": i + 1} for i in range(4)]
    lines += [{"amount": 1000 * (i + 1), "description": f"Fee {i}"} for i in range(3)]
    lines.append(
        {
            "price_data": {
                "currency": "usd",
                "product": price.product,
                "unit_amount_decimal": "12.5",
            },
            "quantity": 3,
        }
    )
    invoice = client.v1.invoices.add_lines(invoice.id, params={"lines": lines})
    assert invoice.status == "draft" and len(invoice.lines.data) == 8
    expected = 1999 * (1 + 2 + 3 + 4) + 1000 + 2000 + 3000 + 38  # 37.5 rounds half up
    assert invoice.subtotal == invoice.total == invoice.amount_due == expected
    invoice = client.v1.invoices.finalize_invoice(invoice.id)
    assert invoice.status == "open" and invoice.number.endswith("-0001")
    assert invoice.status_transitions.finalized_at and invoice.hosted_invoice_url.startswith(
        env.url
    )
    sent = client.v1.invoices.send_invoice(invoice.id)
    assert sent.status == "open"
    assert env.calls() == {
        "POST /v1/invoices": 1,
        "POST /v1/invoices/{id}/add_lines": 1,
        "POST /v1/invoices/{id}/finalize": 1,
        "POST /v1/invoices/{id}/send": 1,
    }
    types = [
        e.type
        for e in client.v1.events.list(params={"types": ["invoice.finalized", "invoice.sent"]}).data
    ]
    assert types == ["invoice.sent", "invoice.finalized"]


def test_invoice_objects_parse_in_the_basil_shape(
    env: StripeEnv, client: stripe.StripeClient
) -> None:
    finalized = invoice_for(env, client)
    # `payments` is includable: returned only when expanded, as at Stripe (api-facts §5).
    assert "payments" not in finalized
    invoice = client.v1.invoices.retrieve(finalized.id, params={"expand": ["payments"]})
    assert isinstance(invoice, stripe.Invoice)
    assert isinstance(invoice.payments, stripe.ListObject)
    default = invoice.payments.data[0]
    assert isinstance(default, stripe.InvoicePayment)
    assert default.is_default and default.status == "open" and default.amount_requested == 10_000
    assert default.payment.type == "payment_intent" and default.payment.payment_intent.startswith(
        "pi_"
    )
    for removed in ("charge", "payment_intent", "paid", "paid_out_of_band"):
        assert removed not in invoice
    intent = client.v1.payment_intents.retrieve(default.payment.payment_intent)
    assert "invoice" not in intent and intent.amount == 10_000


def test_idempotent_replay_and_conflict(env: StripeEnv, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"email": "idem@example.com"})
    key = f"deal-006-{uuid.uuid4()}"
    params = {"customer": customer.id, "metadata": {"deal_id": "006"}}
    first = client.v1.invoices.create(params=params, options={"idempotency_key": key})
    second = client.v1.invoices.create(params=params, options={"idempotency_key": key})
    assert second.id == first.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(env.state()["invoices"]) == 1
    with pytest.raises(stripe.IdempotencyError, match="same parameters"):
        client.v1.invoices.create(
            params={**params, "description": "other"}, options={"idempotency_key": key}
        )
    # Keys are purged after 24 h: the same key then starts a new request.
    env.advance(24 * 3600 + 1)
    third = client.v1.invoices.create(
        params={**params, "description": "other"}, options={"idempotency_key": key}
    )
    assert third.id != first.id


def test_idempotency_saves_execution_errors_not_validation_errors(
    env: StripeEnv, client: stripe.StripeClient
) -> None:
    invoice = invoice_for(env, client)
    key = str(uuid.uuid4())
    with pytest.raises(stripe.InvalidRequestError, match="already finalized") as first:
        client.v1.invoices.finalize_invoice(invoice.id, options={"idempotency_key": key})
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.invoices.finalize_invoice(invoice.id, options={"idempotency_key": key})
    assert again.value.headers["Idempotent-Replayed"] == "true"
    assert again.value.json_body == first.value.json_body
    customer = client.v1.customers.create(params={})
    key = str(uuid.uuid4())
    with pytest.raises(stripe.InvalidRequestError, match="unknown parameter: colour"):
        client.v1.invoices.create(
            params={"customer": customer.id, "colour": "red"}, options={"idempotency_key": key}
        )
    fixed = client.v1.invoices.create(
        params={"customer": customer.id}, options={"idempotency_key": key}
    )
    assert fixed.id.startswith("in_")


def test_dropped_answer_then_retry_with_the_same_key_replays(
    env: StripeEnv, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create(params={})
    key = str(uuid.uuid4())
    env.admin("POST", "faults", {"systems": ["stripe"], "drop_rate": 1.0, "drop_phase": "after"})
    with pytest.raises(stripe.APIConnectionError):
        client.v1.invoices.create(
            params={"customer": customer.id}, options={"idempotency_key": key}
        )
    env.admin("POST", "faults", {})
    retried = client.v1.invoices.create(
        params={"customer": customer.id}, options={"idempotency_key": key}
    )
    assert [inv["id"] for inv in env.state()["invoices"]] == [retried.id]


@pytest.mark.parametrize(
    ("currency", "unit", "quantity", "total"),
    [("jpy", 1500, 3, 4500), ("kwd", 12_340, 2, 24_680), ("usd", 1999, 3, 5997)],
)
def test_minor_unit_totals(
    env: StripeEnv, client: stripe.StripeClient, currency: str, unit: int, quantity: int, total: int
) -> None:
    customer = client.v1.customers.create(params={})
    price = client.v1.prices.create(
        params={"currency": currency, "unit_amount": unit, "product_data": {"name": "Item"}}
    )
    invoice = client.v1.invoices.create(params={"customer": customer.id, "currency": currency})
    invoice = client.v1.invoices.add_lines(
        invoice.id, params={"lines": [{"pricing": {"price": price.id}, "quantity": quantity}]}
    )
    invoice = client.v1.invoices.finalize_invoice(invoice.id)
    assert (invoice.currency, invoice.total, invoice.amount_due, invoice.lines.data[0].amount) == (
        currency,
        total,
        total,
        total,
    )


def test_three_decimal_amounts_must_end_in_zero(
    env: StripeEnv, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create(params={})
    invoice = client.v1.invoices.create(params={"customer": customer.id, "currency": "kwd"})
    with pytest.raises(stripe.InvalidRequestError, match="divisible by 10") as caught:
        client.v1.invoices.add_lines(invoice.id, params={"lines": [{"amount": 1125}]})
    assert caught.value.param == "lines[0][amount]"
    with pytest.raises(stripe.InvalidRequestError, match="Invalid currency"):
        client.v1.invoices.create(params={"customer": customer.id, "currency": "USD"})


def test_errors_map_to_stripe_python_exceptions(
    env: StripeEnv, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.invoices.retrieve("in_doesnotexist")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert "No such invoice: 'in_doesnotexist'" in str(missing.value)
    with pytest.raises(stripe.InvalidRequestError, match="Received unknown parameter: foo"):
        client.v1.customers.create(params={"foo": "bar"})
    with pytest.raises(
        stripe.InvalidRequestError, match="Missing required param: customer"
    ) as param:
        client.v1.invoices.create(params={})
    assert param.value.code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError, match="Invalid integer") as integer:
        client.v1.customers.list(params={"limit": "many"})  # type: ignore[typeddict-item]
    assert integer.value.code == "parameter_invalid_integer"
    bad = stripe.StripeClient("sk_test_wrongkey1234", base_addresses={"api": env.url})
    with pytest.raises(stripe.AuthenticationError) as auth:
        bad.v1.customers.list()
    assert "sk_test_****1234" in str(auth.value) and "wrongkey" not in str(auth.value)


def test_server_fault_answers_like_stripe(env: StripeEnv, client: stripe.StripeClient) -> None:
    env.admin("POST", "faults", {"systems": ["stripe"], "error_rate_5xx": 1.0})
    with pytest.raises(stripe.APIError) as caught:
        client.v1.customers.list()
    assert caught.value.http_status == 500 and caught.value.headers["Stripe-Should-Retry"] == "true"


def test_state_changes_are_frozen_after_finalization(
    env: StripeEnv, client: stripe.StripeClient
) -> None:
    invoice = invoice_for(env, client)
    with pytest.raises(stripe.InvalidRequestError, match="draft"):
        client.v1.invoices.add_lines(invoice.id, params={"lines": [{"amount": 100}]})
    with pytest.raises(stripe.InvalidRequestError, match="no longer editable"):
        client.v1.invoices.update(invoice.id, params={"collection_method": "charge_automatically"})
    updated = client.v1.invoices.update(invoice.id, params={"metadata": {"note": "ok"}})
    assert updated.metadata.to_dict() == {"note": "ok"}
    with pytest.raises(stripe.InvalidRequestError, match="delete draft"):
        client.v1.invoices.delete(invoice.id)
    customer = client.v1.customers.create(params={})
    with pytest.raises(stripe.InvalidRequestError, match="days_until_due"):
        client.v1.invoices.create(
            params={"customer": customer.id, "collection_method": "send_invoice"}
        )
    auto = client.v1.invoices.create(params={"customer": customer.id})
    assert auto.collection_method == "charge_automatically" and auto.auto_advance is False
    with pytest.raises(stripe.InvalidRequestError, match="send_invoice"):
        client.v1.invoices.send_invoice(auto.id)
    assert client.v1.invoices.delete(auto.id).deleted is True


def test_void_and_mark_uncollectible(env: StripeEnv, client: stripe.StripeClient) -> None:
    first = invoice_for(env, client)
    voided = client.v1.invoices.void_invoice(first.id, params={"expand": ["payments"]})
    assert voided.status == "void" and voided.status_transitions.voided_at
    assert voided.payments.data[0].status == "canceled"
    with pytest.raises(stripe.InvalidRequestError, match="open or uncollectible"):
        client.v1.invoices.void_invoice(first.id)
    second = invoice_for(env, client)
    lost = client.v1.invoices.mark_uncollectible(second.id)
    assert lost.status == "uncollectible"
    paid = client.v1.invoices.pay(second.id, params={"paid_out_of_band": True})
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 10_000, 0)


def test_line_limit_and_line_pagination(env: StripeEnv, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={})
    invoice = client.v1.invoices.create(params={"customer": customer.id})
    invoice = client.v1.invoices.add_lines(
        invoice.id, params={"lines": [{"amount": 100 + i} for i in range(250)]}
    )
    assert len(invoice.lines.data) == 10 and invoice.lines.has_more
    amounts = [
        line.amount
        for line in client.v1.invoices.line_items.list(
            invoice.id, params={"limit": 100}
        ).auto_paging_iter()
    ]
    assert amounts == [100 + i for i in range(250)]
    with pytest.raises(stripe.InvalidRequestError, match="at most 250"):
        client.v1.invoices.add_lines(invoice.id, params={"lines": [{"amount": 1}]})
    assert invoice.total == sum(100 + i for i in range(250))


def test_rate_limit_answers_429(tmp_path: Path) -> None:
    with stripe_sandbox(tmp_path, rate_limits="real") as env:
        client = env.client()

        def call(_: int) -> str:
            try:
                client.v1.customers.list()
            except stripe.RateLimitError as exc:
                assert exc.http_status == 429 and exc.json_body["error"]["code"] == "rate_limit"
                return "limited"
            return "ok"

        # A burst well over 25 requests/s (test mode); threads keep it a burst whatever
        # the per-request latency.
        with ThreadPoolExecutor(max_workers=20) as pool:
            outcomes = list(pool.map(call, range(60)))
        assert outcomes.count("ok") >= 25 and "limited" in outcomes


def test_search_pages_with_next_page(env: StripeEnv, client: stripe.StripeClient) -> None:
    made = [client.v1.customers.create(params={"metadata": {"tier": "gold"}}).id for _ in range(5)]
    env.advance(6)
    first = client.v1.customers.search(params={"query": "metadata['tier']:'gold'", "limit": 2})
    assert len(first.data) == 2 and first.has_more and first.next_page
    assert [c.id for c in first.auto_paging_iter()] == made[::-1]
    with pytest.raises(stripe.InvalidRequestError, match="AND and OR"):
        client.v1.customers.search(params={"query": "email:'a' AND name:'b' OR name:'c'"})
