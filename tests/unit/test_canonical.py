from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from billsync.core import money
from billsync.core.canonical import (
    Account,
    Customer,
    Deal,
    DealLine,
    DealWriteBack,
    Discrepancy,
    DiscrepancyKind,
    InvoiceDraft,
    InvoiceLine,
    InvoiceRef,
    InvoiceStatus,
    PaymentEvent,
    PaymentKind,
    WebhookNotification,
)

REV = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CURRENCIES = sorted(money.known_currencies())


def assert_no_floats_in(value: Any, path: str = "$") -> None:
    assert not isinstance(value, float), f"float at {path}: {value!r}"
    if isinstance(value, dict):
        for k, v in value.items():
            assert_no_floats_in(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            assert_no_floats_in(v, f"{path}[{i}]")


def deal(**overrides: Any) -> Deal:
    fields: dict[str, Any] = {
        "id": "006A",
        "account": {"id": "001A", "name": "Acme", "billing_email": "ap@acme.example"},
        "name": "Acme renewal",
        "close_date": date(2025, 3, 1),
        "currency": "USD",
        "amount": "150.00",
        "lines": [
            {"id": "00k1", "product_code": "CONS", "quantity": "1", "unit_price": "100"},
            {
                "id": "00k2",
                "product_code": "SUP",
                "quantity": "2",
                "unit_price": "27.78",
                "discount_percent": "10",
            },
        ],
        "revision": REV,
    }
    fields.update(overrides)
    return Deal.model_validate(fields)


def draft(**overrides: Any) -> InvoiceDraft:
    currency = overrides.pop("currency", "USD")
    lines = overrides.pop(
        "lines",
        [
            InvoiceLine.priced(
                currency, item_ref="1", quantity="3", unit_price="19.99", discount_percent="15"
            ),
            InvoiceLine.priced(currency, item_ref="2", quantity="1", unit_price="0.125"),
        ],
    )
    fields: dict[str, Any] = {
        "deal_id": "006A",
        "deal_revision": REV,
        "target": "stripe",
        "customer": Customer(account_id="001A", name="Acme"),
        "currency": currency,
        "lines": lines,
        "idempotency_key": "006A:stripe:2025-03-01T12:00:00Z",
    }
    fields.update(overrides)
    return InvoiceDraft.with_total(**fields)


def payment(**overrides: Any) -> PaymentEvent:
    fields: dict[str, Any] = {
        "provider": "stripe",
        "event_id": "evt_1",
        "invoice_external_id": "in_1",
        "kind": "paid",
        "amount": "51.10",
        "currency": "usd",
        "occurred_at": "2025-03-02T10:00:00+01:00",
    }
    fields.update(overrides)
    return PaymentEvent.model_validate(fields)


def every_model() -> list[BaseModel]:
    now = datetime(2025, 3, 3, tzinfo=UTC)
    return [
        deal(),
        draft(),
        payment(),
        InvoiceRef(
            target="quickbooks",
            external_id="145",
            currency="EUR",
            total="10.50",
            amount_paid="0",
            balance="10.50",
            status="open",
        ),
        DealWriteBack(
            deal_id="006A",
            target="stripe",
            invoice_external_id="in_1",
            status="paid",
            billing_status="Paid",
            currency="JPY",
            amount_paid=5000,
            balance=0,
        ),
        Discrepancy(
            kind="overpayment",
            deal_id="006A",
            expected=Decimal("10.00"),
            actual=Decimal("12.50"),
            detected_at=now,
        ),
        WebhookNotification(
            provider="stripe",
            event_id="evt_1",
            event_type="invoice.paid",
            payload="{}",
            received_at=now,
        ),
    ]


# --- floats and serialisation -----------------------------------------------------


@pytest.mark.parametrize("model", every_model(), ids=lambda m: type(m).__name__)
def test_json_dump_has_no_float_and_round_trips(model):
    dumped = model.model_dump(mode="json")
    assert_no_floats_in(dumped)
    assert_no_floats_in(json.loads(model.model_dump_json()))
    assert type(model).model_validate_json(model.model_dump_json()) == model
    assert type(model).model_validate(dumped) == model


def test_money_is_a_string_in_json_and_decimal_in_python():
    d = draft()
    assert d.model_dump(mode="json")["total"] == "51.10"
    assert d.model_dump()["total"] == Decimal("51.10")
    assert type(d.total) is Decimal


def test_json_never_uses_exponent_notation():
    ref = InvoiceRef(
        target="stripe", external_id="in_1", currency="USD", total="1E+3", status="open"
    )
    assert ref.model_dump(mode="json")["total"] == "1000"


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda v: deal(amount=v), "amount"),
        (lambda v: deal(lines=[{"id": "l", "quantity": v, "unit_price": "1"}]), "quantity"),
        (lambda v: deal(lines=[{"id": "l", "quantity": 1, "unit_price": v}]), "unit_price"),
        (
            lambda v: deal(
                lines=[{"id": "l", "quantity": 1, "unit_price": 1, "discount_percent": v}]
            ),
            "discount_percent",
        ),
        (lambda v: payment(amount=v), "amount"),
        (
            lambda v: InvoiceRef(
                target="stripe", external_id="x", currency="USD", total=v, status="open"
            ),
            "total",
        ),
        (lambda v: InvoiceLine(item_ref="1", quantity=v, unit_price=1, amount=1), "quantity"),
        (lambda v: Discrepancy(kind="overpayment", actual=v, detected_at=REV), "actual"),
    ],
)
def test_float_money_input_is_rejected_everywhere(factory, field):
    with pytest.raises(ValidationError) as info:
        factory(1.5)
    error = info.value.errors()[0]
    assert error["loc"][-1] == field
    assert "float" in error["msg"]


def test_float_in_json_input_is_rejected():
    raw = payment().model_dump(mode="json")
    text = json.dumps(raw).replace('"51.10"', "51.1")
    with pytest.raises(ValidationError, match="float"):
        PaymentEvent.model_validate_json(text)


@pytest.mark.parametrize("value", [True, "NaN", "Infinity", "abc", None])
def test_non_numbers_are_rejected_as_money(value):
    with pytest.raises(ValidationError):
        deal(amount=value)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_no_float_in_any_dump_of_generated_drafts(data):
    currency = data.draw(st.sampled_from(CURRENCIES))
    exponent = money.currency_exponent(currency)
    line_specs = data.draw(
        st.lists(
            st.tuples(
                st.decimals(min_value=0, max_value=1000, places=3),
                st.decimals(min_value=-(10**6), max_value=10**6, places=4),
                st.one_of(st.none(), st.decimals(min_value=0, max_value=100, places=2)),
            ),
            min_size=1,
            max_size=8,
        )
    )
    lines = [
        InvoiceLine.priced(currency, item_ref=f"i{i}", quantity=q, unit_price=p, discount_percent=d)
        for i, (q, p, d) in enumerate(line_specs)
    ]
    d = draft(currency=currency, lines=lines)
    # The draft total is the exact sum of the line amounts, each the rounded formula.
    assert d.total == sum((line.amount for line in d.lines), Decimal(0))
    for line in d.lines:
        assert line.amount == money.line_amount(
            line.quantity, line.unit_price, line.discount_percent, currency
        )
        assert -int(line.amount.as_tuple().exponent) == exponent
    assert money.to_minor_units(d.total, currency) == sum(
        money.to_minor_units(line.amount, currency) for line in d.lines
    )
    for mode in ("json", "python"):
        assert_no_floats_in(d.model_dump(mode=mode))
    assert InvoiceDraft.model_validate_json(d.model_dump_json()) == d


# --- invariants -------------------------------------------------------------------


def test_draft_total_must_equal_sum_of_lines():
    good = draft()
    with pytest.raises(ValidationError, match=r"total 51\.11 != sum of line amounts 51\.10"):
        InvoiceDraft.model_validate({**good.model_dump(), "total": "51.11"})


def test_draft_line_amount_must_be_the_formula():
    good = draft()
    data = good.model_dump()
    data["lines"][0]["amount"] = Decimal("50.98")
    data["total"] = Decimal("51.11")
    with pytest.raises(ValidationError, match=r"lines\[0\].amount 50.98"):
        InvoiceDraft.model_validate(data)


def test_draft_needs_lines_and_matching_customer_currency():
    with pytest.raises(ValidationError):
        draft(lines=[])
    with pytest.raises(ValidationError, match="customer currency EUR != invoice currency USD"):
        draft(customer=Customer(account_id="001A", name="Acme", currency="EUR"))


def test_draft_due_date_xor_days_until_due():
    with pytest.raises(ValidationError, match="not both"):
        draft(due_date=date(2025, 4, 1), days_until_due=30)
    with pytest.raises(ValidationError):
        draft(days_until_due=-1)


def test_idempotency_key_fits_stripe_limit():
    with pytest.raises(ValidationError):
        draft(idempotency_key="k" * 256)
    with pytest.raises(ValidationError):
        draft(idempotency_key="")


def test_deal_may_carry_an_amount_that_disagrees_with_its_lines():
    d = deal(amount="999.99")
    assert d.lines_total() == Decimal("150.00")  # 100 + 2 × 27.78 × 0.9 = 150.004 -> .00
    assert d.amount != d.lines_total()


def test_deal_line_amount_uses_deal_currency_rounding():
    line = DealLine(id="l", quantity="7", unit_price="1234", discount_percent="12.5")
    assert line.amount("JPY") == Decimal(7558)


def test_amounts_shown_by_targets_must_fit_the_currency():
    with pytest.raises(ValidationError, match="more decimal places than JPY"):
        payment(currency="JPY", amount="10.5")
    with pytest.raises(ValidationError, match="total"):
        InvoiceRef(target="stripe", external_id="x", currency="USD", total="1.001", status="open")
    with pytest.raises(ValidationError):
        payment(amount="-1.00")  # magnitudes only; the kind gives the direction


@pytest.mark.parametrize("discount", ["-1", "100.5"])
def test_discount_percent_bounds(discount):
    # A deal line carries what Salesforce holds (validation reports it with a fix) ...
    assert DealLine(id="l", quantity=1, unit_price=1, discount_percent=discount)
    # ... but nothing out of range can reach an invoice.
    with pytest.raises(ValidationError):
        InvoiceLine(item_ref="i", quantity=1, unit_price=1, discount_percent=discount, amount=1)


def test_models_are_frozen_and_forbid_unknown_fields():
    d = deal()
    with pytest.raises(ValidationError):
        d.amount = Decimal(1)  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        deal(amout="1.00")
    with pytest.raises(ValidationError, match="extra"):
        Account(id="1", name="A", nmber="x")  # type: ignore[call-arg]
    assert hash(d) == hash(deal())


# --- currencies, datetimes, names -------------------------------------------------


def test_currency_is_validated_and_upper_cased():
    assert payment(currency="usd").currency == "USD"
    for bad in ("XAU", "ZZZ", "US", "", 840):
        with pytest.raises(ValidationError):
            payment(currency=bad)


def test_datetimes_must_be_aware_and_become_utc():
    with pytest.raises(ValidationError, match="timezone"):
        deal(revision=datetime(2025, 3, 1, 12, 0))
    with pytest.raises(ValidationError):
        payment(occurred_at="2025-03-02T10:00:00")
    d = deal(revision=datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))
    assert d.revision == REV
    assert d.revision.utcoffset() == timedelta(0)
    assert payment().occurred_at == datetime(2025, 3, 2, 9, 0, tzinfo=UTC)


def test_discrepancy_resolution_cannot_precede_detection():
    with pytest.raises(ValidationError, match="before"):
        Discrepancy(kind="overpayment", detected_at=REV, resolved_at=REV - timedelta(1))


class _Named(StrEnum):
    BILLING_EU = "billing_eu"


def test_targets_are_open_validated_names():
    # A name given as an enum member is stored as plain str.
    ref = payment(provider=_Named.BILLING_EU)
    assert ref.provider == "billing_eu" and type(ref.provider) is str
    # A third-party connector's target needs no change here.
    assert payment(provider="xero").provider == "xero"
    for bad in ("Stripe", "", "no-dashes", "1x", "x" * 33, 7):
        with pytest.raises(ValidationError):
            payment(provider=bad)


def test_closed_enums():
    assert [k.value for k in PaymentKind] == [
        "paid",
        "partially_paid",
        "payment_failed",
        "refunded",
        "voided",
        "uncollectible",
        "disputed",
        "dispute_closed",
        "credited",
    ]
    with pytest.raises(ValidationError):
        payment(kind="chargeback")
    assert (
        DiscrepancyKind("duplicate_invoice_for_deal") is DiscrepancyKind.DUPLICATE_INVOICE_FOR_DEAL
    )
    assert InvoiceStatus("void") is InvoiceStatus.VOID


def test_emails_are_checked_lightly():
    with pytest.raises(ValidationError):
        Account(id="1", name="A", billing_email="not an email")
    assert Account(id="1", name="A", billing_email="ap@acme.example").billing_email
