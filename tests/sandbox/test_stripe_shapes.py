"""Every object the Stripe sandbox returns has the real fields of the current API.

Two references: stripe-python 16.1.0's models (what the SDK parses; always available)
and Stripe's own example objects (`fixtures3.json` from stripe/openapi): the field names
of each example are kept in tests/sandbox/data/stripe_fixture_fields.json, so the check
runs on any clone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from tests.sandbox.stripe_support import StripeEnv, invoice_for, stripe_sandbox

FIXTURE_FIELDS = Path(__file__).with_name("data") / "stripe_fixture_fields.json"
TYPES = Path(__file__).with_name("data") / "stripe_types.json"  # see test_stripe_type_shapes
MODELS: dict[str, type] = {
    "customer": stripe.Customer,
    "product": stripe.Product,
    "price": stripe.Price,
    "coupon": stripe.Coupon,
    "invoiceitem": stripe.InvoiceItem,
    "invoice": stripe.Invoice,
    "line_item": stripe.InvoiceLineItem,
    "invoice_payment": stripe.InvoicePayment,
    "payment_intent": stripe.PaymentIntent,
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "dispute": stripe.Dispute,
    "credit_note": stripe.CreditNote,
    "credit_note_line_item": stripe.CreditNoteLineItem,
    "event": stripe.Event,
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    with stripe_sandbox(tmp_path_factory.mktemp("shapes")) as env:
        yield _make_one_of_each(env)


def _make_one_of_each(env: StripeEnv) -> dict[str, dict[str, Any]]:
    client = env.client()
    coupon = client.v1.coupons.create(params={"percent_off": "12.5", "duration": "once"})
    invoice = invoice_for(env, client)
    env.admin("POST", f"stripe/invoices/{invoice.id}/pay")
    env.admin("POST", f"stripe/invoices/{invoice.id}/refund", {"amount": 100})
    env.admin("POST", f"stripe/invoices/{invoice.id}/dispute")
    client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 100})
    price = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 5, "product_data": {"name": "P"}}
    )
    state = env.state()
    event = env.raw("GET", "/v1/events?limit=1").json()["data"][0]
    note = state["credit_notes"][0]
    return {
        "customer": state["customers"][0],
        "product": state["products"][0],
        "price": next(p for p in state["prices"] if p["id"] == price.id),
        "coupon": next(c for c in state["coupons"] if c["id"] == coupon.id),
        "invoiceitem": state["invoiceitems"][0],
        "invoice": state["invoices"][0],
        "line_item": state["invoices"][0]["lines"]["data"][0],
        "invoice_payment": state["invoice_payments"][0],
        "payment_intent": state["payment_intents"][0],
        "charge": state["charges"][0],
        "refund": state["refunds"][0],
        "dispute": state["disputes"][0],
        "credit_note": note,
        "credit_note_line_item": note["lines"]["data"][0],
        "event": event,
    }


def _annotations(model: type) -> set[str]:
    names: set[str] = set()
    for klass in model.__mro__:
        names |= {n for n in getattr(klass, "__annotations__", {}) if not n[0].isupper()}
    return names


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_fields_are_known_to_stripe_python(samples: dict[str, dict[str, Any]], kind: str) -> None:
    obj = samples[kind]
    assert obj["object"] == kind
    unknown = set(obj) - _annotations(MODELS[kind]) - {"id", "object"}
    assert not unknown, f"{kind} fields stripe-python does not know: {sorted(unknown)}"


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_fields_match_stripes_own_examples(samples: dict[str, dict[str, Any]], kind: str) -> None:
    expected = set(json.loads(FIXTURE_FIELDS.read_text())["fields"][kind])
    if kind == "invoice":
        expected.discard("subscription")  # stale in the fixtures: gone since basil (SDK agrees)
    # Fields Stripe's types declare optional (`name?:`) are on some objects only (a custom
    # credit note line has no `invoice_line_item`): the example need not be the rule.
    types = json.loads(TYPES.read_text())
    fields = types["types"][types["objects"][kind]]
    expected -= {name for name, spec in fields.items() if spec["optional"]}
    missing = expected - set(samples[kind])
    assert not missing, f"{kind} lacks fields Stripe returns: {sorted(missing)}"


def test_basil_removed_fields_are_absent(samples: dict[str, dict[str, Any]]) -> None:
    for gone in ("charge", "payment_intent", "paid", "paid_out_of_band"):
        assert gone not in samples["invoice"]
    assert "invoice" not in samples["charge"] and "invoice" not in samples["payment_intent"]
    assert samples["invoice"]["payments"]["object"] == "list"
    parsed = stripe.Invoice.construct_from(samples["invoice"], "sk_test_x")
    assert isinstance(parsed.payments, stripe.ListObject)
