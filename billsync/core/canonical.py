"""The canonical model: what the engine knows about deals, invoices and payments.

Connectors translate vendor JSON to and from these types; the engine, the ledger and the
mapping layer see nothing else. Every model is frozen (a value, safe to hash, cache and
pass between threads) and forbids unknown fields (a typo in a mapping is an error, not a
silently dropped field).

Money rules, enforced by the types below:
- every amount, price, quantity and percentage is a ``Decimal``; a float input is
  rejected with a validation error, never converted;
- JSON output renders them as plain decimal strings (``"1000.00"``, never ``1e3`` and
  never a JSON number), so ``model_dump(mode="json")`` round-trips exactly;
- amounts that a target will show (invoice lines and totals, payments) must already be
  at the currency's precision; raw inputs (deal amount, unit prices) may carry more, and
  any inconsistency in them is the validator's and reconciliation's to report, not a
  reason the deal cannot be represented.

Datetimes must carry a timezone and are normalised to UTC.

Targets are plain validated strings, not a closed enum: a third-party connector package
(Xero, NetSuite) adds a target by registering an entry point, and must not need a change
to this module. ``Target`` lists the built-in names for convenience; its members are
``str`` and compare equal to the stored values. Payment kinds and discrepancy kinds are
closed enums because the engine's state machine and reports branch on them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from billsync.core import money

__all__ = [
    "Account",
    "Address",
    "Contact",
    "CurrencyCode",
    "Customer",
    "Deal",
    "DealLine",
    "DealWriteBack",
    "Discrepancy",
    "DiscrepancyKind",
    "ExactDecimal",
    "FactState",
    "InvoiceDraft",
    "InvoiceLine",
    "InvoiceMoney",
    "InvoiceRef",
    "InvoiceStatus",
    "MoneyFact",
    "MoneyFactKind",
    "PaymentEvent",
    "PaymentKind",
    "Percent",
    "TargetName",
    "UtcDatetime",
    "WebhookNotification",
]


# --- field types -------------------------------------------------------------------


def _exact_decimal(value: object) -> Decimal:
    try:
        return money.parse_decimal(value)
    except TypeError as exc:
        raise PydanticCustomError("exact_decimal_type", str(exc)) from None


def _plain_decimal_str(value: Decimal) -> str:
    # format "f" never uses exponent notation: Decimal("1E+3") -> "1000".
    return format(value, "f")


ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    PlainSerializer(_plain_decimal_str, return_type=str, when_used="json"),
]
"""A finite Decimal from Decimal, int or a numeric string; float and bool are errors."""

Percent = Annotated[ExactDecimal, Field(ge=0, le=100)]


def _currency(value: object) -> str:
    try:
        return money.normalise_currency(value)
    except money.UnknownCurrencyError as exc:
        raise PydanticCustomError("currency", str(exc)) from None


CurrencyCode = Annotated[str, BeforeValidator(_currency)]
"""ISO 4217 code with a minor unit, stored upper-case ("usd" is accepted as "USD")."""


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime (naive input is an error), normalised to UTC."""

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]

_TARGET_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _target_name(value: object) -> str:
    if not isinstance(value, str) or not _TARGET_NAME.fullmatch(value):
        # Messages are built here and passed without context, so braces in the input
        # are never read as template fields.
        raise PydanticCustomError(
            "target_name",
            f"target must be a lower-case connection name such as 'billing_eu' (got {value!r})",
        )
    return str.__str__(value)  # a str subclass (an enum member) becomes a plain str


TargetName = Annotated[str, BeforeValidator(_target_name)]
"""A connection name: lower-case letters, digits and underscores, e.g. "billing_eu"."""


def _email(value: str) -> str:
    local, at, domain = value.partition("@")
    # Deliberately loose: the source already validates emails, and a strict check here
    # would stop a whole deal at read time instead of failing it with a reason later.
    if not at or not local or not domain or any(c.isspace() for c in value):
        raise PydanticCustomError("email", f"{value!r} is not an email address")
    return value


Email = Annotated[str, AfterValidator(_email)]


def _rendered(value: object) -> object:
    # Discrepancy values are shown to people; render numbers exactly, refuse floats.
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return _plain_decimal_str(_exact_decimal(value))
    if isinstance(value, float):
        _exact_decimal(value)
    return value


RenderedValue = Annotated[str, BeforeValidator(_rendered)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_precision(amount: Decimal, currency: str, what: str) -> None:
    try:
        money.to_currency_precision(amount, currency)
    except money.PrecisionError as exc:
        raise ValueError(f"{what}: {exc}") from None


# --- enums -------------------------------------------------------------------------


class PaymentKind(StrEnum):
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    PAYMENT_FAILED = "payment_failed"
    REFUNDED = "refunded"
    VOIDED = "voided"
    UNCOLLECTIBLE = "uncollectible"
    DISPUTED = "disputed"
    DISPUTE_CLOSED = "dispute_closed"
    CREDITED = "credited"


class InvoiceStatus(StrEnum):
    """Invoice status as the target reports it (QBO has no status field: the connector
    derives it from Balance and the void flag; partially paid is ``open`` with
    ``amount_paid > 0``)."""

    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"
    DELETED = "deleted"


class DiscrepancyKind(StrEnum):
    """What reconciliation can find (DESIGN.md "Reconciliation"); the names ops see."""

    CLOSED_WON_NOT_INVOICED = "closed_won_not_invoiced"  # a won deal with no invoice
    DEAL_AMOUNT_MISMATCH = "deal_amount_mismatch"  # deal amount != sum of its lines
    INVOICE_TOTAL_MISMATCH = "invoice_total_mismatch"  # target total != intended total
    CURRENCY_MISMATCH = "currency_mismatch"  # e.g. QBO customer in another currency
    DEAL_CHANGED_AFTER_INVOICE = "deal_changed_after_invoice"
    INVOICE_MISSING_IN_TARGET = "invoice_missing_in_target"  # deleted out of band
    INVOICE_VOIDED_OUT_OF_BAND = "invoice_voided_out_of_band"
    PARTIAL_PAYMENT = "partial_payment"  # payment < open balance
    OVERPAYMENT = "overpayment"  # payment > open balance
    PAYMENT_FOR_UNKNOWN_INVOICE = "payment_for_unknown_invoice"
    WRITEBACK_MISSING = "writeback_missing"
    WRITEBACK_STALE = "writeback_stale"
    DUPLICATE_INVOICE_FOR_DEAL = "duplicate_invoice_for_deal"
    # The ledger's paid / credited / balance / status / due date differ from what the
    # target's facts derive (either way round).
    INVOICE_MONEY_MISMATCH = "invoice_money_mismatch"
    # The target's own balance or amount paid differ from what its facts derive: its
    # books hold something billsync's money model does not explain.
    TARGET_FIGURES_UNEXPLAINED = "target_figures_unexplained"
    DEAL_LOST_AFTER_INVOICE = "deal_lost_after_invoice"  # invoiced, then no longer won
    ROUTING_CHANGED_AFTER_INVOICE = "routing_changed_after_invoice"  # found in the old target


# --- deals (source side) -----------------------------------------------------------


class Address(_Model):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None  # as the source holds it; Salesforce allows free text


class Contact(_Model):
    name: str | None = None
    email: Email | None = None


class Account(_Model):
    id: NonEmptyStr
    name: NonEmptyStr
    number: str | None = None
    billing_address: Address | None = None
    billing_email: Email | None = None


class DealLine(_Model):
    id: NonEmptyStr
    product_code: str | None = None  # None is representable; validation reports it
    description: str | None = None
    quantity: ExactDecimal
    unit_price: ExactDecimal
    # As the source holds it, even out of range: the mapping layer's validation names
    # the deal, the line and the fix, which a model error here could not.
    discount_percent: ExactDecimal | None = None
    service_date: date | None = None

    def amount(self, currency: str) -> Decimal:
        """The line amount as a target will compute it (rounded half up)."""
        return money.line_amount(self.quantity, self.unit_price, self.discount_percent, currency)


class Deal(_Model):
    """A closed-won deal as the source holds it.

    ``amount`` need not equal the sum of the lines: that check is part of validation
    (step 3 of the run cycle) and produces a precise failure, so the model must be able to
    carry the inconsistent deal to it.
    """

    id: NonEmptyStr
    account: Account
    name: str
    close_date: date
    currency: CurrencyCode
    amount: ExactDecimal
    lines: tuple[DealLine, ...] = ()
    terms: str | None = None
    po_number: str | None = None
    billing_contact: Contact | None = None
    revision: UtcDatetime  # the source's revision stamp: part of the idempotency key
    target_hint: str | None = None  # raw routing field; the mapping turns it into a target

    def lines_total(self) -> Decimal:
        return money.sum_amounts((line.amount(self.currency) for line in self.lines), self.currency)


# --- invoices (target side) --------------------------------------------------------


class Customer(_Model):
    """The billing customer to ensure in a target. ``external_id`` is the target's id
    once known (from the ledger link, a deterministic match or a create)."""

    account_id: NonEmptyStr  # source account id: the key for the ledger link
    name: NonEmptyStr
    email: Email | None = None
    billing_address: Address | None = None
    currency: CurrencyCode | None = None  # QBO customers are single-currency
    account_number: str | None = None
    external_id: str | None = None


class InvoiceLine(_Model):
    """One line to create; ``amount`` is checked against the line formula by the draft."""

    source_line_id: str | None = None
    item_ref: NonEmptyStr  # QBO Item id / Stripe Price or Product id, from the mapping
    description: str | None = None
    quantity: ExactDecimal
    unit_price: ExactDecimal
    discount_percent: Percent | None = None
    amount: ExactDecimal
    service_date: date | None = None
    tax_code: str | None = None  # QuickBooks TaxCode
    tax_rates: tuple[str, ...] = ()  # Stripe tax rate ids (txr_…)

    @classmethod
    def priced(cls, currency: str, **fields: Any) -> Self:
        """Build a line with ``amount`` computed by ``money.line_amount``."""
        amount = money.line_amount(
            fields["quantity"], fields["unit_price"], fields.get("discount_percent"), currency
        )
        return cls(amount=amount, **fields)


class InvoiceDraft(_Model):
    """What we intend to create in a target, exactly once.

    Invariants (checked here, so no connector can send an inconsistent draft): every line
    amount is the line formula rounded half up; ``total`` is the exact sum of the line
    amounts (pre-tax: targets compute tax from the tax codes); the customer's currency, if
    known, is the invoice currency.
    """

    deal_id: NonEmptyStr
    deal_revision: UtcDatetime
    target: TargetName
    customer: Customer
    currency: CurrencyCode
    lines: tuple[InvoiceLine, ...] = Field(min_length=1)
    total: ExactDecimal
    doc_number: str | None = None
    memo: str | None = None
    automatic_tax: bool = False  # the target computes tax itself (Stripe Tax)
    po_number: str | None = None
    terms: str | None = None
    issue_date: date | None = None
    due_date: date | None = None
    days_until_due: int | None = Field(default=None, ge=0)
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=255)]

    @classmethod
    def with_total(cls, **fields: Any) -> Self:
        """Build a draft whose ``total`` is the sum of its line amounts."""
        lines = fields["lines"]
        currency = money.normalise_currency(fields["currency"])
        total = money.sum_amounts((line.amount for line in lines), currency)
        return cls(total=total, **fields)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for index, line in enumerate(self.lines):
            expected = money.line_amount(
                line.quantity, line.unit_price, line.discount_percent, self.currency
            )
            if line.amount != expected:
                raise ValueError(
                    f"lines[{index}].amount {line.amount} != {line.quantity} × "
                    f"{line.unit_price} less {line.discount_percent or 0}% = {expected}"
                )
        total = money.sum_amounts((line.amount for line in self.lines), self.currency)
        if self.total != total:
            raise ValueError(f"total {self.total} != sum of line amounts {total}")
        if self.customer.currency is not None and self.customer.currency != self.currency:
            raise ValueError(
                f"customer currency {self.customer.currency} != invoice currency {self.currency}"
            )
        if self.due_date is not None and self.days_until_due is not None:
            raise ValueError("give due_date or days_until_due, not both")
        return self


class InvoiceRef(_Model):
    """An invoice that exists in a target, as last read from it."""

    target: TargetName
    external_id: NonEmptyStr
    deal_id: str | None = None  # the deal reference read back from the target
    number: str | None = None  # None until finalised (Stripe numbers at finalisation)
    url: str | None = None
    currency: CurrencyCode
    total: ExactDecimal  # gross, as the target computed it
    amount_paid: ExactDecimal | None = None
    balance: ExactDecimal | None = None
    status: InvoiceStatus
    tax: ExactDecimal | None = None  # the target's tax; total - tax is what the draft intended
    due_date: date | None = None  # as the target computed it (QuickBooks: from the terms)

    @property
    def net(self) -> Decimal:
        """The pre-tax total, to compare with the draft's total (like with like)."""
        return self.total if self.tax is None else self.total - self.tax

    @model_validator(mode="after")
    def _precision(self) -> Self:
        for name in ("total", "amount_paid", "balance", "tax"):
            value = getattr(self, name)
            if value is not None:
                _check_precision(value, self.currency, name)
        return self


class DealWriteBack(_Model):
    """The money state written back onto the deal (DESIGN.md run cycle step 6)."""

    deal_id: NonEmptyStr
    target: TargetName
    invoice_external_id: NonEmptyStr
    invoice_number: str | None = None
    invoice_url: str | None = None
    status: InvoiceStatus  # the document's status in the target
    billing_status: (
        NonEmptyStr  # the Billing Status label (billsync.core.money_state.billing_status)
    )
    currency: CurrencyCode
    amount_paid: ExactDecimal
    balance: ExactDecimal
    amount_refunded: ExactDecimal = Decimal(0)
    amount_credited: ExactDecimal = Decimal(0)
    tax: ExactDecimal | None = None
    total: ExactDecimal | None = None
    due_date: date | None = None
    last_payment_date: date | None = None


# --- payments and webhooks ---------------------------------------------------------


class PaymentEvent(_Model):
    """A fact about money on an invoice, from a webhook or a feed poll.

    ``amount`` is a non-negative magnitude; ``kind`` says which way it moves (a refund of
    5.00 is kind=refunded, amount=5.00). ``event_id`` is the provider's id, the dedupe key.
    """

    provider: TargetName
    event_id: NonEmptyStr
    invoice_external_id: str | None = None  # None: the payment names no known invoice
    kind: PaymentKind
    amount: Annotated[ExactDecimal, Field(ge=0)]
    currency: CurrencyCode
    occurred_at: UtcDatetime
    provider_payment_id: str | None = None

    @model_validator(mode="after")
    def _precision(self) -> Self:
        _check_precision(self.amount, self.currency, "amount")
        return self


class MoneyFactKind(StrEnum):
    """One kind of money fact a target holds about an invoice (DESIGN.md "Money model").

    The connector reports each fact with the target's own state; which facts count, and
    how, is decided once, in ``billsync.core.money_state.derive``.
    """

    PAYMENT = "payment"  # money applied to the invoice (Stripe InvoicePayment; QBO Payment line)
    CREDIT = "credit"  # a credit that lowers the balance due (Stripe pre-payment credit
    # note amount; a QBO CreditMemo applied to the invoice)
    POST_PAYMENT_CREDIT = "post_payment_credit"  # Stripe post-payment credit note amount:
    # credits money already paid (refund, customer balance, out of band); balance unchanged
    REFUND = "refund"  # money returned on a payment of this invoice (Stripe Refund)
    DISPUTE = "dispute"  # a dispute on a payment of this invoice (Stripe Dispute)
    PAYMENT_FAILED = "payment_failed"  # a collection attempt that failed; moves no money
    UNAPPLIED = "unapplied"  # money paid with this invoice that the target holds as
    # customer credit, not applied to it (QBO Payment.UnappliedAmt): never lowers the
    # balance due, whatever later happens to the invoice's other facts


class FactState(StrEnum):
    """The target's state of a fact, normalised. Which states count is in money_state."""

    APPLIED = "applied"  # payments, credits: in force
    VOID = "void"  # credit note voided, payment voided: counts for nothing
    PENDING = "pending"  # refund pending / requires_action: the money is leaving
    SUCCEEDED = "succeeded"  # refund succeeded
    FAILED = "failed"  # refund failed or canceled: the money came back
    INQUIRY = "inquiry"  # dispute inquiry (warning_*): no funds withdrawn
    OPEN = "open"  # dispute needs_response / under_review: funds withdrawn, not final
    WON = "won"  # dispute won: funds reinstated
    LOST = "lost"  # dispute lost: funds withdrawn for good


class MoneyFact(_Model):
    """One money fact on one invoice, keyed by the target's own id.

    ``amount`` is a non-negative magnitude in the invoice's currency; ``kind`` says how it
    counts. ``fact_id`` is stable for the life of the fact in the target, so a fact that
    changes there (a payment edited, a credit note voided, a refund failed) updates the
    ledger's record instead of adding a second one; one that disappears (a payment
    deleted or moved to another invoice) is tombstoned. A fact id is the id of the
    target object it comes from, optionally followed by ``:qualifiers`` (QBO
    ``<payment>:invoice:<invoice>``, Stripe ``cn_…:pre``): a change hint that names the
    object re-reads every invoice holding one of its facts.
    """

    fact_id: NonEmptyStr
    kind: MoneyFactKind
    state: FactState = FactState.APPLIED
    amount: Annotated[ExactDecimal, Field(ge=0)]
    occurred_at: UtcDatetime
    version: str | None = None  # the target's version of the fact (QBO SyncToken)


class InvoiceMoney(_Model):
    """An invoice's money as the target holds it, read fresh: the authority.

    ``net + tax == total`` as the target computed them. ``status`` is the document's
    own status (void, uncollectible, ...). ``reported_balance`` / ``reported_paid`` are
    the target's own figures (Stripe ``amount_remaining`` / ``amount_paid``; QBO
    ``Balance`` / ``TotalAmt - Balance``): reconciliation checks that the facts explain
    them.
    """

    target: TargetName
    external_id: NonEmptyStr
    currency: CurrencyCode
    status: InvoiceStatus
    net: ExactDecimal
    tax: ExactDecimal
    total: ExactDecimal
    facts: tuple[MoneyFact, ...] = ()
    reported_balance: ExactDecimal | None = None
    reported_paid: ExactDecimal | None = None
    due_date: date | None = None
    issue_date: date | None = None
    terms: str | None = None
    version: str | None = None  # the target's version of the invoice (QBO SyncToken)
    deal_id: str | None = None  # the deal reference read back from the target
    number: str | None = None

    @model_validator(mode="after")
    def _precision(self) -> Self:
        for name in ("net", "tax", "total", "reported_balance", "reported_paid"):
            value = getattr(self, name)
            if value is not None:
                _check_precision(value, self.currency, name)
        for fact in self.facts:
            _check_precision(fact.amount, self.currency, f"fact {fact.fact_id}")
        return self


class WebhookNotification(_Model):
    """One verified notification from a webhook request, as stored in the inbox.

    One request may carry several (Intuit batches them). ``event_id`` is the provider's
    event id, or for Intuit's legacy payload (which has none) a deterministic id the
    connector derives from realm, entity, id, operation and lastUpdated.

    ``provider`` is the connection the notification is for: the verifier's own, or a
    peer of the same kind when one vendor app notifies for several companies (the
    server stores it under that connection).
    """

    provider: TargetName
    event_id: NonEmptyStr
    event_type: NonEmptyStr
    payload: str  # this notification's JSON text, verbatim enough to reprocess
    received_at: UtcDatetime


# --- reconciliation ----------------------------------------------------------------


class Discrepancy(_Model):
    """A disagreement between the deal source, the ledger and a target.

    ``expected``/``actual`` are rendered for people (Decimals as plain strings); the
    typed facts live in the ledger rows they came from.
    """

    kind: DiscrepancyKind
    deal_id: str | None = None  # None e.g. for a payment for an unknown invoice
    target: TargetName | None = None
    external_id: str | None = None  # the target-side invoice or payment concerned
    expected: RenderedValue | None = None
    actual: RenderedValue | None = None
    detail: str = ""
    detected_at: UtcDatetime
    resolved_at: UtcDatetime | None = None
    id: int | None = None  # the ledger row's id: what an operator acknowledges or resolves
    acknowledged_at: UtcDatetime | None = None  # an operator has seen it (still open)
    acknowledged_by: str | None = None
    acknowledged_note: str | None = None

    @model_validator(mode="after")
    def _resolved_after_detected(self) -> Self:
        if self.resolved_at is not None and self.resolved_at < self.detected_at:
            raise ValueError("resolved_at is before detected_at")
        return self
