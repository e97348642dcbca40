"""The money check: the ledger's copy of an invoice's money against a fresh read of it.

The target is the authority (DESIGN.md "Money model"). For every invoice a pass reads
back, the target's facts are read (`PaymentFeed.read_invoice_money`, batched) and
`billsync.core.money_state.derive` says what they come to; that is compared with what the ledger
holds, field by field, whichever way they differ:

- ``invoice_money_mismatch``: the ledger's paid, credited, balance, money status or due
  date is not what the target's facts derive (the ledger shows more paid than the
  target, or less; a balance, a status or a due date that moved). Expected is the
  target's side, actual the ledger's, both as plain amounts with the currency.
  ``--fix`` records the read (`Ledger.record_invoice_money`), moves the deal's state,
  queues the deal's write-back and closes the row once the ledger agrees.
- ``target_figures_unexplained``: the target's own figures disagree with its facts —
  its reported balance is not total − paid − credited, or its reported amount paid is
  neither the payments nor the payments and credits (a target may report total −
  balance as paid, which credit notes lower too). billsync's model does not
  explain the target's books there; nothing is fixed, a person looks.

A row is re-verified every pass: it closes when the sides agree, and its amounts are
updated (and any acknowledgement dropped) when they change.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from billsync.core.canonical import DiscrepancyKind, InvoiceMoney, InvoiceStatus
from billsync.core.money_state import MoneyState, derive
from billsync.sync.engine.money_sync import deal_state_for
from billsync.sync.engine.reconcile.report import show
from billsync.sync.ledger.models import InvoiceRecord

if TYPE_CHECKING:
    from billsync.sync.engine.reconcile.recorder import Reconciler

COMPARED = ("paid", "credited", "balance", "status", "due_date")
"""The ledger's figures the check compares, in the order they are shown."""


def state_of(read: InvoiceMoney) -> MoneyState:
    return derive(
        currency=read.currency,
        document_status=read.status,
        net=read.net,
        tax=read.tax,
        total=read.total,
        facts=read.facts,
    )


def differences(invoice: InvoiceRecord, state: MoneyState, read: InvoiceMoney) -> dict[str, Any]:
    """Compared fields that differ: name -> {"ledger": …, "target": …}, as people read
    them. The ledger's status is compared once the ledger has read the invoice (an
    invoice only created has none); the due date when the target reports one."""
    currency = invoice.currency
    ledger: dict[str, Any] = {
        "paid": invoice.amount_paid,
        "credited": invoice.credited if invoice.credited is not None else invoice.total * 0,
        "balance": invoice.balance,
        "status": invoice.money_status,
        "due_date": invoice.due_date,
    }
    target: dict[str, Any] = {
        "paid": state.paid,
        "credited": state.credited,
        "balance": state.balance_due,
        "status": state.status.value,
        "due_date": read.due_date,
    }
    found: dict[str, Any] = {}
    for name in COMPARED:
        mine, theirs = ledger[name], target[name]
        if name == "status" and mine is None:
            continue
        if name == "due_date" and theirs is None:
            continue
        if mine != theirs:
            found[name] = {"ledger": _shown(mine, currency), "target": _shown(theirs, currency)}
    return found


def unexplained(state: MoneyState, read: InvoiceMoney) -> dict[str, Any]:
    """The target's own figures its facts do not explain: name -> {"reported", "derived"}."""
    if read.status in (InvoiceStatus.VOID, InvoiceStatus.DELETED):
        return {}
    currency = read.currency
    found: dict[str, Any] = {}
    if read.reported_balance is not None and read.reported_balance != state.balance_due:
        found["balance"] = {
            "reported": show(read.reported_balance, currency),
            "derived": show(state.balance_due, currency),
        }
    paid_forms = (state.paid, state.paid + state.credited)
    if read.reported_paid is not None and read.reported_paid not in paid_forms:
        found["paid"] = {
            "reported": show(read.reported_paid, currency),
            "derived": show(state.paid, currency),
        }
    return found


def check_money(
    rec: Reconciler, target: str, invoice: InvoiceRecord, read: InvoiceMoney, deal_id: str
) -> None:
    """Both money checks for one invoice that exists in the target."""
    state = state_of(read)
    _target_figures(rec, target, invoice, state, read, deal_id)
    kind = DiscrepancyKind.INVOICE_MONEY_MISMATCH
    found = differences(invoice, state, read)
    if not found:
        rec.resolve(kind, deal_id, target, "the ledger's money agrees with the target's facts")
        return
    if rec.fix:
        after = repair(rec, target, read, deal_id, what=_sentence(found))
        if not differences(after, state, read):
            rec.resolve(kind, deal_id, target, "fixed: re-read from the target and recorded")
            return
        found = differences(after, state, read)
    rec.record(
        kind,
        deal_id,
        target,
        expected=_side(_with_amounts(found, invoice, state), "target"),
        actual=_side(_with_amounts(found, invoice, state), "ledger"),
        details={
            "invoice": invoice.external_id,
            "currency": invoice.currency,
            "differs": _sentence(found),
            "fields": found,
            "note": f"{_direction(found)}; expected is the target's side, actual the "
            "ledger's; billsync reconcile --fix records the target's read",
        },
        refresh=True,
    )


def repair(
    rec: Reconciler, target: str, read: InvoiceMoney, deal_id: str, *, what: str
) -> InvoiceRecord:
    """Record the fresh read, move the deal's state with it and queue its write-back."""
    change = rec.ledger.record_invoice_money(read)
    rec.ledger.set_deal_state(deal_id, target, deal_state_for(change.state.status))
    rec.queue_writeback(deal_id, target)
    rec.fixed("money_recorded", deal_id, target, f"invoice {read.external_id}: {what}")
    return change.after


def _target_figures(
    rec: Reconciler,
    target: str,
    invoice: InvoiceRecord,
    state: MoneyState,
    read: InvoiceMoney,
    deal_id: str,
) -> None:
    kind = DiscrepancyKind.TARGET_FIGURES_UNEXPLAINED
    found = unexplained(state, read)
    if not found:
        rec.resolve(kind, deal_id, target, "the target's figures agree with its facts")
        return
    currency = read.currency
    rec.record(
        kind,
        deal_id,
        target,
        expected=", ".join(f"{n} {v['derived']} {currency}" for n, v in found.items()),
        actual=", ".join(f"{n} {v['reported']} {currency}" for n, v in found.items()),
        details={
            "invoice": invoice.external_id,
            "currency": currency,
            "fields": found,
            "note": f"the {target} invoice reports figures its payments, credits and "
            "refunds do not add up to (expected: derived from its facts; actual: what it "
            "reports); look at the invoice in the target",
        },
        refresh=True,
    )


def _shown(value: Any, currency: str) -> str:
    if value is None:
        return "none"
    if isinstance(value, Decimal):
        return f"{show(value, currency)} {currency}"
    return str(value)


def _with_amounts(
    found: dict[str, Any], invoice: InvoiceRecord, state: MoneyState
) -> dict[str, Any]:
    """The differing fields, always with paid and balance on both sides first: a person
    reading a status or due-date difference still sees the money."""
    currency = invoice.currency
    shown: dict[str, Any] = {
        "paid": {"ledger": _shown(invoice.amount_paid, currency),
                 "target": _shown(state.paid, currency)},
        "balance": {"ledger": _shown(invoice.balance, currency),
                    "target": _shown(state.balance_due, currency)},
    }  # fmt: skip
    shown.update(found)
    return shown


def _side(found: dict[str, Any], side: str) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {found[name][side]}" for name in found)


def _sentence(found: dict[str, Any]) -> str:
    return "; ".join(
        f"{name.replace('_', ' ')}: ledger {v['ledger']}, target {v['target']}"
        for name, v in found.items()
    )


def _direction(found: dict[str, Any]) -> str:
    paid = found.get("paid")
    if paid is None:
        return "the ledger and the target disagree"
    ledger = Decimal(paid["ledger"].split()[0])
    target = Decimal(paid["target"].split()[0])
    return (
        "the ledger shows more paid than the target"
        if ledger > target
        else "the ledger shows less paid than the target"
    )
