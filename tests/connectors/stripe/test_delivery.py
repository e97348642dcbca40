"""Contract: how a finalized send_invoice invoice reaches the customer (`stripe.delivery`).

send_call: billsync calls /send (4 calls an invoice). stripe_emails: finalized with
auto_advance, Stripe emails it per the account's email settings (3 calls). Whether an
email went out is what Stripe's ``invoice.sent`` event says; the invoice object has no
sent timestamp."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from billsync.connectors.stripe import StripeTarget
from billsync.core.canonical import InvoiceStatus
from tests.connectors.stripe.support import ConnectorEnv, customer, draft

THREE_CALLS = {
    "POST /v1/invoices": 1,
    "POST /v1/invoices/{id}/add_lines": 1,
    "POST /v1/invoices/{id}/finalize": 1,
}


class Crash(Exception):
    pass


def sent(env: ConnectorEnv) -> list[str]:
    """Invoices Stripe emailed (read via the API: call counts are taken before)."""
    reply = requests.get(
        f"{env.info['stripe_url']}/v1/events",
        params={"type": "invoice.sent", "limit": 100},
        headers={"Authorization": f"Bearer {env.info['stripe_api_key']}"},
        timeout=10,
    )
    reply.raise_for_status()
    return [e["data"]["object"]["id"] for e in reply.json()["data"]]


def known(env: ConnectorEnv, target: StripeTarget) -> Any:
    found = target.ensure_customer(customer())
    env.clear_calls()
    return found


@pytest.fixture
def emails_setting(env: ConnectorEnv) -> Iterator[Any]:
    state = env.runner.sandbox.systems["stripe"].state
    yield state
    state.email_finalized_invoices = True


@pytest.mark.parametrize("delivery", ["send_call", "stripe_emails"])
def test_each_delivery_emails_the_invoice_once(env: ConnectorEnv, delivery: str) -> None:
    target = env.connect(delivery=delivery).target
    ref = target.create_invoice(draft(customer_=known(env, target)))
    assert ref.status is InvoiceStatus.OPEN
    calls = env.calls()
    [inv] = env.invoices()
    assert sent(env) == [inv["id"]]  # exactly one email, whoever sent it
    if delivery == "send_call":
        assert calls == {**THREE_CALLS, "POST /v1/invoices/{id}/send": 1}
        assert inv["auto_advance"] is False
    else:
        assert calls == THREE_CALLS
        assert inv["auto_advance"] is True and inv["collection_method"] == "send_invoice"


def test_stripe_emails_depend_on_the_account_setting(
    env: ConnectorEnv, emails_setting: Any
) -> None:
    """The documented price of stripe_emails: with "Email finalized invoices to
    customers" off, nobody emails the invoice (the operator's setting, not a bug)."""
    emails_setting.email_finalized_invoices = False
    target = env.connect(delivery="stripe_emails").target
    target.create_invoice(draft(customer_=known(env, target)))
    assert env.calls() == THREE_CALLS and sent(env) == []


def test_an_invoice_finalized_under_send_call_is_still_sent(
    env: ConnectorEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash after finalize under send_call, resumed after switching to stripe_emails:
    the open invoice has auto_advance false, Stripe will never email it, so the resumed
    attempt sends it (same key) instead of dropping the send."""
    first = env.connect().target
    planned = draft(customer_=known(env, first))

    def dying(*args: Any) -> Any:
        raise Crash

    monkeypatch.setattr(first, "_send", dying)
    with pytest.raises(Crash):
        first.create_invoice(planned)
    assert sent(env) == []
    env.clear_calls()
    ref = env.connect(delivery="stripe_emails").target.create_invoice(planned)
    assert env.calls()["POST /v1/invoices/{id}/send"] == 1
    assert ref.status is InvoiceStatus.OPEN and sent(env) == [ref.external_id]
    assert len(env.invoices()) == 1


def test_charge_automatically_is_unchanged_by_the_delivery(env: ConnectorEnv) -> None:
    target = env.connect(delivery="stripe_emails").target
    target.create_invoice(draft(customer_=known(env, target), days_until_due=None))
    assert env.calls() == THREE_CALLS
    [inv] = env.invoices()
    assert inv["collection_method"] == "charge_automatically" and inv["auto_advance"] is True
    assert sent(env) == []


def test_no_delivery_without_send_after_finalize(env: ConnectorEnv) -> None:
    target = env.connect(delivery="stripe_emails", send_after_finalize=False).target
    target.create_invoice(draft(customer_=known(env, target)))
    assert env.calls() == THREE_CALLS
    [inv] = env.invoices()
    assert inv["auto_advance"] is False and sent(env) == []
