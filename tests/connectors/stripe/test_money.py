"""Contract: `StripeFeed.read_invoice_money` equals what the sandbox shows after each
lifecycle step, the facts explain Stripe's own figures (``derive`` gives back
``amount_remaining``), and the number of Stripe calls per invoice stays small."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests

from billsync.connectors.stripe import StripeConnector
from billsync.core.canonical import (
    FactState,
    InvoiceMoney,
    InvoiceRef,
    InvoiceStatus,
    MoneyFactKind,
)
from billsync.core.money_state import MoneyStatus, derive
from tests.connectors.stripe.support import ConnectorEnv, customer, draft

Facts = set[tuple[str, MoneyFactKind, FactState, Decimal]]


def invoiced(
    env: ConnectorEnv,
    connector: StripeConnector,
    total: str = "1000.00",
    currency: str = "USD",
    deal: str = "006DEAL1",
) -> InvoiceRef:
    known = connector.target.ensure_customer(customer())
    return connector.target.create_invoice(
        draft([("1", total, None)], customer_=known, deal_id=deal, currency=currency)
    )


def post(env: ConnectorEnv, path: str, data: dict[str, Any]) -> Any:
    response = requests.post(
        f"{env.info['stripe_url']}{path}",
        data=data,
        headers={"Authorization": f"Bearer {env.info['stripe_api_key']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def admin(env: ConnectorEnv, path: str, body: Any = None) -> Any:
    return env.admin("POST", f"stripe/{path}", body or {})


def read(env: ConnectorEnv, connector: StripeConnector, invoice_id: str) -> InvoiceMoney:
    money = connector.feed.read_invoice_money([invoice_id])[invoice_id]
    shown = next(i for i in env.invoices() if i["id"] == invoice_id)
    # What the sandbox shows, field by field.
    assert money.status == InvoiceStatus(shown["status"])
    assert money.reported_balance == _dec(shown["amount_remaining"], money)
    assert money.reported_paid == _dec(shown["amount_paid"], money)
    assert money.total == _dec(shown["total"], money)
    assert money.net == _dec(shown["total_excluding_tax"], money)
    assert money.net + money.tax == money.total
    assert money.number == shown["number"]
    # The facts explain Stripe's own balance.
    state = derived(money)
    if money.status is not InvoiceStatus.VOID:
        assert state.balance_due == money.reported_balance
    return money


def _dec(minor: int, money: InvoiceMoney) -> Decimal:
    places = {"JPY": 0, "KWD": 3}.get(money.currency, 2)
    return Decimal(minor).scaleb(-places)


def derived(money: InvoiceMoney) -> Any:
    return derive(
        currency=money.currency,
        document_status=money.status,
        net=money.net,
        tax=money.tax,
        total=money.total,
        facts=money.facts,
    )


def facts(money: InvoiceMoney) -> Facts:
    return {(f.fact_id, f.kind, f.state, f.amount) for f in money.facts}


def calls(env: ConnectorEnv) -> int:
    return sum(env.calls().values())


def test_open_then_paid_and_calls_per_invoice(env: ConnectorEnv) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    env.clear_calls()
    money = read(env, connector, ref.external_id)
    assert calls(env) == 2  # the invoice (payments expanded), its credit notes
    assert money.facts == () and derived(money).status is MoneyStatus.OPEN
    assert money.deal_id == "006DEAL1" and money.due_date is not None
    paid = env.pay(ref.external_id)["invoice_payment"]
    env.clear_calls()
    money = read(env, connector, ref.external_id)
    assert calls(env) == 3  # + the charges of the paying intent, refunds embedded
    assert facts(money) == {
        (paid["id"], MoneyFactKind.PAYMENT, FactState.APPLIED, Decimal("1000.00"))
    }
    assert derived(money).status is MoneyStatus.PAID


def test_refund_partial_then_failed(env: ConnectorEnv) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    env.pay(ref.external_id)
    refund = admin(env, f"invoices/{ref.external_id}/refund", {"amount": 10_000})["refund"]
    money = read(env, connector, ref.external_id)
    assert money.status is InvoiceStatus.PAID and money.reported_balance == Decimal("0.00")
    assert (refund["id"], MoneyFactKind.REFUND, FactState.SUCCEEDED, Decimal("100.00")) in facts(
        money
    )
    assert derived(money).status is MoneyStatus.PARTIALLY_REFUNDED
    failed = admin(env, f"refunds/{refund['id']}/fail")
    assert failed["refund"]["status"] == "failed" and failed["charge"]["amount_refunded"] == 0
    money = read(env, connector, ref.external_id)
    assert (refund["id"], MoneyFactKind.REFUND, FactState.FAILED, Decimal("100.00")) in facts(money)
    assert derived(money).status is MoneyStatus.PAID


def test_pre_and_post_payment_credit_notes(env: ConnectorEnv) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    pre = post(env, "/v1/credit_notes", {"invoice": ref.external_id, "amount": 20_000})
    money = read(env, connector, ref.external_id)
    assert facts(money) == {
        (f"{pre['id']}:pre", MoneyFactKind.CREDIT, FactState.APPLIED, Decimal("200.00"))
    }
    assert money.reported_balance == Decimal("800.00")
    assert derived(money).status is MoneyStatus.PARTIALLY_PAID
    env.pay(ref.external_id)
    after = post(
        env,
        "/v1/credit_notes",
        {"invoice": ref.external_id, "amount": 5_000, "refund_amount": 5_000},
    )
    money = read(env, connector, ref.external_id)
    kinds = {(f.kind, f.state, f.amount) for f in money.facts}
    assert kinds == {
        (MoneyFactKind.CREDIT, FactState.APPLIED, Decimal("200.00")),
        (MoneyFactKind.PAYMENT, FactState.APPLIED, Decimal("800.00")),
        (MoneyFactKind.POST_PAYMENT_CREDIT, FactState.APPLIED, Decimal("50.00")),
        (MoneyFactKind.REFUND, FactState.SUCCEEDED, Decimal("50.00")),
    }
    assert f"{after['id']}:post" in {f.fact_id for f in money.facts}
    state = derived(money)
    assert state.credited_after_payment == Decimal("50.00") and state.balance_due == 0


def test_credit_note_voided_restores_the_balance(env: ConnectorEnv) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    note = post(env, "/v1/credit_notes", {"invoice": ref.external_id, "amount": 100_000})
    money = read(env, connector, ref.external_id)
    assert money.status is InvoiceStatus.PAID and derived(money).status is MoneyStatus.PAID
    post(env, f"/v1/credit_notes/{note['id']}/void", {})
    money = read(env, connector, ref.external_id)
    assert money.status is InvoiceStatus.OPEN and money.reported_balance == Decimal("1000.00")
    assert facts(money) == {
        (f"{note['id']}:pre", MoneyFactKind.CREDIT, FactState.VOID, Decimal("1000.00"))
    }
    assert derived(money).status is MoneyStatus.OPEN


@pytest.mark.parametrize(
    ("close", "state", "status"),
    [
        (None, FactState.OPEN, MoneyStatus.DISPUTED),
        ("won", FactState.WON, MoneyStatus.PAID),
        ("lost", FactState.LOST, MoneyStatus.DISPUTE_LOST),
    ],
)
def test_dispute_open_won_lost(
    env: ConnectorEnv, close: str | None, state: FactState, status: MoneyStatus
) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    env.pay(ref.external_id)
    dispute = admin(env, f"invoices/{ref.external_id}/dispute")
    if close:
        admin(env, f"disputes/{dispute['id']}/close", {"status": close})
    env.clear_calls()
    money = read(env, connector, ref.external_id)
    assert calls(env) == 4  # + the disputes of the disputed intent
    assert (dispute["id"], MoneyFactKind.DISPUTE, state, Decimal("1000.00")) in facts(money)
    assert derived(money).status is status


def test_dispute_inquiry(env: ConnectorEnv) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    env.pay(ref.external_id)
    inquiry = admin(env, f"invoices/{ref.external_id}/dispute", {"inquiry": True})
    money = read(env, connector, ref.external_id)
    assert (inquiry["id"], MoneyFactKind.DISPUTE, FactState.INQUIRY, Decimal("1000.00")) in facts(
        money
    )
    assert derived(money).disputed == 0 and derived(money).status is MoneyStatus.DISPUTED


def test_uncollectible_then_paid(env: ConnectorEnv) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    post(env, f"/v1/invoices/{ref.external_id}/mark_uncollectible", {})
    money = read(env, connector, ref.external_id)
    assert money.status is InvoiceStatus.UNCOLLECTIBLE
    assert derived(money).status is MoneyStatus.UNCOLLECTIBLE
    env.pay(ref.external_id)
    money = read(env, connector, ref.external_id)
    assert money.status is InvoiceStatus.PAID and derived(money).status is MoneyStatus.PAID


def test_void_and_payment_failed(env: ConnectorEnv) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    admin(env, f"invoices/{ref.external_id}/fail")
    env.clear_calls()
    money = read(env, connector, ref.external_id)
    assert calls(env) == 3  # the failed intent's charges
    [failure] = money.facts
    assert failure.kind is MoneyFactKind.PAYMENT_FAILED and failure.fact_id.startswith("ch_")
    assert derived(money).status is MoneyStatus.PAYMENT_FAILED
    admin(env, f"invoices/{ref.external_id}/void")
    money = read(env, connector, ref.external_id)
    assert money.status is InvoiceStatus.VOID and derived(money).status is MoneyStatus.VOIDED


def test_paid_out_of_band(env: ConnectorEnv) -> None:
    connector = env.connect()
    ref = invoiced(env, connector, "300.00")
    post(env, f"/v1/invoices/{ref.external_id}/pay", {"paid_out_of_band": "true"})
    money = read(env, connector, ref.external_id)
    assert facts(money) == {
        (
            f"{ref.external_id}:paid_out_of_band",
            MoneyFactKind.PAYMENT,
            FactState.APPLIED,
            Decimal("300.00"),
        )
    }


def test_taxed_invoice_with_automatic_tax(env: ConnectorEnv) -> None:
    connector = env.connect(automatic_tax=True)  # the customer is in DE: 19 % (sandbox table)
    ref = invoiced(env, connector, "1000.00")
    money = read(env, connector, ref.external_id)
    assert (money.net, money.tax, money.total) == (
        Decimal("1000.00"),
        Decimal("190.00"),
        Decimal("1190.00"),
    )
    env.pay(ref.external_id)
    money = read(env, connector, ref.external_id)
    assert money.reported_paid == Decimal("1190.00") and derived(money).status is MoneyStatus.PAID


@pytest.mark.parametrize(
    ("currency", "total", "minor"), [("JPY", "12345", 12_345), ("KWD", "1.23", 1_230)]
)
def test_zero_and_three_decimal_currencies(
    env: ConnectorEnv, currency: str, total: str, minor: int
) -> None:
    connector = env.connect()
    ref = invoiced(env, connector, total, currency=currency)
    env.pay(ref.external_id, minor // 2 if currency == "JPY" else 610)
    money = read(env, connector, ref.external_id)
    assert money.currency == currency and money.total == Decimal(total)
    [payment] = money.facts
    expected = Decimal(minor // 2) if currency == "JPY" else Decimal("0.610")
    assert payment.amount == expected and str(payment.amount) == str(expected)
    assert derived(money).status is MoneyStatus.PARTIALLY_PAID


def test_unknown_and_deleted_invoices_are_absent(env: ConnectorEnv) -> None:
    connector = env.connect()
    ref = invoiced(env, connector)
    cus = post(env, "/v1/customers", {"email": "x@example.com"})
    draft_inv = post(env, "/v1/invoices", {"customer": cus["id"]})
    requests.delete(
        f"{env.info['stripe_url']}/v1/invoices/{draft_inv['id']}",
        headers={"Authorization": f"Bearer {env.info['stripe_api_key']}"},
        timeout=10,
    )
    found = connector.feed.read_invoice_money(
        [ref.external_id, "in_doesnotexist", draft_inv["id"], ref.external_id]
    )
    assert list(found) == [ref.external_id]
