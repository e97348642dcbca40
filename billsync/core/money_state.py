"""An invoice's money state, derived from the target's facts: the one place this is done.

The target is the authority (DESIGN.md "Money model"): the ledger mirrors the target's
money facts (`billsync.core.canonical.MoneyFact`) and the document's own status, and everything
billsync shows — the ledger's paid and balance, the deal's Billing Status in
Salesforce, aging, KPIs, reconciliation — comes from `derive` and `billing_status`
below. Nothing else adds up payments or names a status.

What the figures mean (the README's "Money on the deal" says the same for users):

- ``total`` (gross) = ``net`` + ``tax``, as the target computed them.
- ``paid``: money applied to the invoice (Stripe InvoicePayments with status ``paid``;
  QuickBooks Payment lines linking the invoice), gross of any later refund or dispute.
- ``credited``: credits that lower the balance due (Stripe pre-payment credit notes,
  ``amount_due = total - pre_payment_credit_notes_amount``; QuickBooks CreditMemos
  applied). ``credited_after_payment``: Stripe post-payment credit notes, which credit
  money already paid and leave ``amount_remaining`` alone. Voided credit notes count
  for nothing.
- ``balance_due`` = max(0, total − paid − credited): what the customer still owes, the
  figure the target itself shows (Stripe ``amount_remaining``, QuickBooks ``Balance``).
  It is 0 for a voided or deleted invoice. A refund does **not** reopen the balance:
  Stripe keeps a refunded invoice ``paid`` with nothing remaining — the money went back
  to the customer by agreement, it is not owed again. A dispute does not reopen it
  either: the bank took the money, and whether it is owed is what the dispute decides.
- ``unapplied``: money the customer paid with this invoice that the target keeps as
  customer credit instead of applying it (QuickBooks ``Payment.UnappliedAmt``). It is
  not paid to the invoice and never lowers its balance: QuickBooks' ``Balance`` does not
  move when a credit memo on the invoice is later voided and the payment's excess sits
  unapplied — the invoice owes again while the customer holds credit.
- ``overpaid`` = max(0, paid + credited − total) + unapplied: money beyond what the
  invoice asked for, which the customer holds as credit.
- ``refunded``: refunds succeeded or still pending (pending money is already leaving);
  failed and canceled refunds count for nothing.
- ``disputed``: funds withdrawn by disputes still open (inquiries withdraw nothing);
  ``dispute_lost``: funds withdrawn for good by lost disputes. A won dispute's funds
  were reinstated: it counts for nothing.
- ``net_collected`` = paid − refunded − disputed − dispute_lost.
- ``written_off``: the balance still due on an invoice the target marked uncollectible
  (Stripe ``mark_uncollectible``). It stays in ``balance_due`` — the target still shows
  it and it can still be paid — but open AR (aging) leaves it out.

Status, first match wins (the table in tests/unit/test_money_state.py):

| status | when |
|---|---|
| deleted / voided | the document was deleted / voided in the target |
| disputed | a dispute is open (inquiry included) |
| uncollectible | marked uncollectible and something is still due |
| dispute_lost | a dispute was lost |
| refunded | refunds cover everything paid (paid > 0) |
| partially_refunded | something was refunded |
| overpaid | overpaid > 0 and nothing due |
| paid | nothing due, and something paid or credited (or a zero invoice) |
| payment_failed | the latest collection attempt failed after the latest payment |
| partially_paid | something paid or credited, balance left |
| open | otherwise |
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from billsync.core import money
from billsync.core.canonical import FactState, InvoiceStatus, MoneyFact, MoneyFactKind

__all__ = [
    "BillingStatus",
    "MoneyState",
    "MoneyStatus",
    "billing_status",
    "derive",
    "last_payment_date",
]


class MoneyStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERPAID = "overpaid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    DISPUTE_LOST = "dispute_lost"
    PAYMENT_FAILED = "payment_failed"
    UNCOLLECTIBLE = "uncollectible"
    VOIDED = "voided"
    DELETED = "deleted"

    @property
    def is_open_ar(self) -> bool:
        """Whether the balance due counts as open receivables (aging, DSO)."""
        return self not in (MoneyStatus.VOIDED, MoneyStatus.DELETED, MoneyStatus.UNCOLLECTIBLE)


class BillingStatus(StrEnum):
    """The deal's Billing Status labels (the picklist values the Salesforce org needs)."""

    INVOICED = "Invoiced"
    PARTIALLY_PAID = "Partially Paid"
    PAID = "Paid"
    OVERPAID = "Overpaid"
    PAYMENT_FAILED = "Payment Failed"
    PARTIALLY_REFUNDED = "Partially Refunded"
    REFUNDED = "Refunded"
    DISPUTED = "Disputed"
    DISPUTE_LOST = "Dispute Lost"
    VOIDED = "Voided"
    UNCOLLECTIBLE = "Uncollectible"
    ERROR = "Error"


# The one mapping from money status to the deal's Billing Status.
_BILLING_STATUS: dict[MoneyStatus, BillingStatus] = {
    MoneyStatus.OPEN: BillingStatus.INVOICED,
    MoneyStatus.PARTIALLY_PAID: BillingStatus.PARTIALLY_PAID,
    MoneyStatus.PAID: BillingStatus.PAID,
    MoneyStatus.OVERPAID: BillingStatus.OVERPAID,
    MoneyStatus.PARTIALLY_REFUNDED: BillingStatus.PARTIALLY_REFUNDED,
    MoneyStatus.REFUNDED: BillingStatus.REFUNDED,
    MoneyStatus.DISPUTED: BillingStatus.DISPUTED,
    MoneyStatus.DISPUTE_LOST: BillingStatus.DISPUTE_LOST,
    MoneyStatus.PAYMENT_FAILED: BillingStatus.PAYMENT_FAILED,
    MoneyStatus.UNCOLLECTIBLE: BillingStatus.UNCOLLECTIBLE,
    MoneyStatus.VOIDED: BillingStatus.VOIDED,
    MoneyStatus.DELETED: BillingStatus.VOIDED,
}


def billing_status(status: MoneyStatus | str | None) -> BillingStatus:
    """The deal's Billing Status for an invoice's money status; None (no invoice, only a
    sync error) is ``Error``. A status text the ledger does not know (written by an
    older release) reads as ``Invoiced`` until the invoice is next read."""
    if status is None:
        return BillingStatus.ERROR
    try:
        return _BILLING_STATUS[MoneyStatus(status)]
    except ValueError:
        return BillingStatus.INVOICED


@dataclass(frozen=True, slots=True)
class MoneyState:
    currency: str
    net: Decimal
    tax: Decimal
    total: Decimal
    paid: Decimal
    credited: Decimal
    credited_after_payment: Decimal
    refunded: Decimal
    disputed: Decimal
    dispute_lost: Decimal
    written_off: Decimal
    balance_due: Decimal
    unapplied: Decimal
    overpaid: Decimal
    open_disputes: int
    status: MoneyStatus

    @property
    def net_collected(self) -> Decimal:
        return _sum(
            self.currency,
            [self.paid, -self.refunded, -self.disputed, -self.dispute_lost],
        )

    @property
    def receivable(self) -> bool:
        """Whether the balance counts as open receivables: not voided or deleted, and not
        written off by the target — also while a dispute is open on a written-off invoice
        (Stripe keeps it ``uncollectible``, outside open AR, whatever the dispute)."""
        return self.status.is_open_ar and self.written_off == 0

    @property
    def open_ar(self) -> Decimal:
        """The balance that counts as open receivables (0 when written off or voided)."""
        return self.balance_due if self.receivable else self.balance_due * 0


_REFUND_COUNTS = (FactState.SUCCEEDED, FactState.PENDING, FactState.APPLIED)


def derive(
    *,
    currency: str,
    document_status: InvoiceStatus | str,
    net: Decimal,
    tax: Decimal,
    total: Decimal,
    facts: Iterable[MoneyFact],
) -> MoneyState:
    """The money state of one invoice from the target's document status, totals and
    facts (rules in the module docstring). Pure: same input, same answer."""
    doc = InvoiceStatus(document_status)
    live = list(facts)

    def total_of(kind: MoneyFactKind, *states: FactState) -> Decimal:
        return _sum(currency, [f.amount for f in live if f.kind is kind and f.state in states])

    paid = total_of(MoneyFactKind.PAYMENT, FactState.APPLIED, FactState.SUCCEEDED)
    credited = total_of(MoneyFactKind.CREDIT, FactState.APPLIED)
    after = total_of(MoneyFactKind.POST_PAYMENT_CREDIT, FactState.APPLIED)
    refunded = total_of(MoneyFactKind.REFUND, *_REFUND_COUNTS)
    disputed = total_of(MoneyFactKind.DISPUTE, FactState.OPEN)
    lost = total_of(MoneyFactKind.DISPUTE, FactState.LOST)
    unapplied = total_of(MoneyFactKind.UNAPPLIED, FactState.APPLIED)
    open_disputes = sum(
        1
        for f in live
        if f.kind is MoneyFactKind.DISPUTE and f.state in (FactState.OPEN, FactState.INQUIRY)
    )
    zero = money.quantize(0, currency)
    gone = doc in (InvoiceStatus.VOID, InvoiceStatus.DELETED)
    remaining = _sum(currency, [total, -paid, -credited])
    balance_due = zero if gone or remaining < 0 else remaining
    overpaid = _sum(currency, [-remaining if remaining < 0 else zero, unapplied])
    written_off = balance_due if doc is InvoiceStatus.UNCOLLECTIBLE else zero

    status = _status(
        doc=doc,
        total=total,
        paid=paid,
        credited=credited,
        refunded=refunded,
        lost=lost,
        open_disputes=open_disputes,
        balance_due=balance_due,
        overpaid=overpaid,
        failed_last=_failed_after_last_payment(live),
    )
    return MoneyState(
        currency=currency,
        net=net,
        tax=tax,
        total=total,
        paid=paid,
        credited=credited,
        credited_after_payment=after,
        refunded=refunded,
        disputed=disputed,
        dispute_lost=lost,
        written_off=written_off,
        balance_due=balance_due,
        unapplied=unapplied,
        overpaid=overpaid,
        open_disputes=open_disputes,
        status=status,
    )


def _status(
    *,
    doc: InvoiceStatus,
    total: Decimal,
    paid: Decimal,
    credited: Decimal,
    refunded: Decimal,
    lost: Decimal,
    open_disputes: int,
    balance_due: Decimal,
    overpaid: Decimal,
    failed_last: bool,
) -> MoneyStatus:
    if doc is InvoiceStatus.DELETED:
        return MoneyStatus.DELETED
    if doc is InvoiceStatus.VOID:
        return MoneyStatus.VOIDED
    if open_disputes:
        return MoneyStatus.DISPUTED
    if doc is InvoiceStatus.UNCOLLECTIBLE and balance_due > 0:
        return MoneyStatus.UNCOLLECTIBLE
    if lost > 0:
        return MoneyStatus.DISPUTE_LOST
    if refunded > 0:
        return MoneyStatus.REFUNDED if refunded >= paid else MoneyStatus.PARTIALLY_REFUNDED
    if overpaid > 0 and balance_due == 0:
        return MoneyStatus.OVERPAID
    settled = paid > 0 or credited > 0
    if balance_due == 0 and (settled or total == 0):
        return MoneyStatus.PAID
    if failed_last:
        return MoneyStatus.PAYMENT_FAILED
    return MoneyStatus.PARTIALLY_PAID if settled else MoneyStatus.OPEN


def _failed_after_last_payment(facts: list[MoneyFact]) -> bool:
    failures = [f.occurred_at for f in facts if f.kind is MoneyFactKind.PAYMENT_FAILED]
    if not failures:
        return False
    payments = [
        f.occurred_at
        for f in facts
        if f.kind is MoneyFactKind.PAYMENT and f.state in (FactState.APPLIED, FactState.SUCCEEDED)
    ]
    return not payments or max(failures) > max(payments)


def last_payment_date(facts: Iterable[MoneyFact]) -> date | None:
    """When money last came in (the deal's Last Payment Date)."""
    times: list[datetime] = [
        f.occurred_at
        for f in facts
        if f.kind is MoneyFactKind.PAYMENT and f.state in (FactState.APPLIED, FactState.SUCCEEDED)
    ]
    return max(times).date() if times else None


def _sum(currency: str, amounts: Iterable[Decimal]) -> Decimal:
    # copy_negate keeps exactness; sum_amounts refuses sub-minor-unit digits.
    return money.sum_amounts(amounts, currency)
