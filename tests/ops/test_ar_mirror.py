"""The AR reports show the ledger's mirror of each invoice's money and nothing else.

A book of every kind of money fact (refunds succeeded, pending and failed; disputes
open, in inquiry, won and lost; voided and applied credit notes; post-payment credit;
write-offs; void invoices) in USD, JPY (no minor unit) and KWD (three decimals): the
aging total per currency must equal the sum over the invoices of
``derive(...).open_ar`` — the one rule — computed here from the target's reads, not
from the ledger. One KWD row is made to look written before migration 0006 (money
status NULL, a wrong balance): the reports derive it from its stored facts.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import sqlalchemy as sa

from billsync.core import money
from billsync.core.canonical import FactState, InvoiceMoney, InvoiceStatus, MoneyFact, MoneyFactKind
from billsync.core.money_state import derive
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.schema import invoices
from billsync.sync.ops.aging import aging
from billsync.sync.ops.kpis import kpis
from billsync.sync.ops.render import money_str
from tests.ops.ar_fixture import D, at

K = MoneyFactKind
S = FactState


def f(fact_id: str, kind: MoneyFactKind, amount: str, day: str, state: FactState = S.APPLIED
      ) -> MoneyFact:  # fmt: skip
    return MoneyFact(fact_id=fact_id, kind=kind, state=state, amount=Decimal(amount),
                     occurred_at=at(day))  # fmt: skip


def read(ref: str, currency: str, total: str, status: str, *facts: MoneyFact,
         tax: str = "0") -> InvoiceMoney:  # fmt: skip
    gross, taxed = Decimal(total), money.quantize(tax, currency)
    return InvoiceMoney(target="stripe", external_id=ref, currency=currency,
                        status=InvoiceStatus(status), net=gross - taxed, tax=taxed,
                        total=gross, facts=facts)  # fmt: skip


READS = [
    # USD
    read(
        "A1",
        "USD",
        "1000.00",
        "paid",
        f("a1-p", K.PAYMENT, "1000.00", "2026-02-01"),
        f("a1-r", K.REFUND, "300.00", "2026-02-10", S.SUCCEEDED),
        f("a1-r2", K.REFUND, "100.00", "2026-02-11", S.FAILED),
    ),
    read(
        "A2",
        "USD",
        "500.00",
        "open",
        f("a2-p", K.PAYMENT, "200.00", "2026-02-01"),
        f("a2-d", K.DISPUTE, "200.00", "2026-02-20", S.LOST),
    ),
    read(
        "A3",
        "USD",
        "880.00",
        "open",
        f("a3-p", K.PAYMENT, "300.00", "2026-01-15"),
        f("a3-d", K.DISPUTE, "300.00", "2026-03-01", S.OPEN),
        tax="80.00",
    ),
    read(
        "A4",
        "USD",
        "600.00",
        "open",
        f("a4-cv", K.CREDIT, "250.00", "2026-02-02", S.VOID),
        f("a4-c", K.CREDIT, "100.00", "2026-02-03"),
    ),
    read("A5", "USD", "900.00", "uncollectible", f("a5-p", K.PAYMENT, "100.00", "2026-01-05")),
    read("A6", "USD", "400.00", "void", f("a6-p", K.PAYMENT, "50.00", "2026-01-05")),
    read(
        "A7",
        "USD",
        "150.00",
        "open",
        f("a7-p", K.PAYMENT, "50.00", "2026-03-02"),
        f("a7-d", K.DISPUTE, "50.00", "2026-03-03", S.INQUIRY),
    ),
    # JPY
    read(
        "J1",
        "JPY",
        "120000",
        "open",
        f("j1-p", K.PAYMENT, "20000", "2026-02-01"),
        f("j1-r", K.REFUND, "5000", "2026-02-05", S.PENDING),
    ),
    read("J2", "JPY", "70000", "uncollectible"),
    read(
        "J3",
        "JPY",
        "45000",
        "paid",
        f("j3-p", K.PAYMENT, "45000", "2026-01-20"),
        f("j3-d", K.DISPUTE, "45000", "2026-02-01", S.WON),
    ),
    # KWD
    read(
        "K1",
        "KWD",
        "1250.500",
        "open",
        f("k1-p", K.PAYMENT, "250.125", "2026-02-01"),
        f("k1-c", K.CREDIT, "0.375", "2026-02-02"),
        f("k1-cv", K.CREDIT, "500.000", "2026-02-03", S.VOID),
    ),
    read(
        "K2",
        "KWD",
        "300.000",
        "paid",
        f("k2-p", K.PAYMENT, "300.000", "2026-02-01"),
        f("k2-pc", K.POST_PAYMENT_CREDIT, "100.000", "2026-02-04"),
        f("k2-r", K.REFUND, "100.000", "2026-02-04", S.SUCCEEDED),
    ),
    read("K3", "KWD", "99.999", "open", f("k3-p", K.PAYMENT, "0.999", "2026-03-01")),
]
NEVER_DERIVED = "K3"


def load(ledger: Ledger) -> None:
    for money_read in READS:
        ledger.upsert_invoice(
            target=money_read.target, external_id=money_read.external_id,
            currency=money_read.currency, total=money_read.total, status=money_read.status,
            deal_id=f"deal-{money_read.external_id}", issue_date=D.replace(month=1, day=2),
            due_date=D.replace(month=2, day=1), customer_name="Acme",
        )  # fmt: skip
        ledger.record_invoice_money(money_read)
    with ledger.engine.begin() as conn:
        conn.execute(
            sa.update(invoices)
            .where(invoices.c.external_id == NEVER_DERIVED)
            .values(money_status=None, balance=Decimal("12.345"))
        )


def expected_open_ar() -> dict[str, str]:
    by_currency: dict[str, list[Decimal]] = defaultdict(list)
    for r in READS:
        state = derive(currency=r.currency, document_status=r.status, net=r.net, tax=r.tax,
                       total=r.total, facts=r.facts)  # fmt: skip
        by_currency[r.currency].append(state.open_ar)
    return {c: money_str(money.sum_amounts(a, c), c) for c, a in by_currency.items()}


def test_aging_totals_are_the_derived_open_ar(ledger: Ledger) -> None:
    load(ledger)
    expected = expected_open_ar()
    # By hand: USD A2 300.00 + A3 580.00 + A4 500.00 + A7 100.00 = 1480.00 (A1 refunded
    # and paid, A5 written off, A6 void); JPY J1 100000 (J2 written off, J3 paid, its
    # dispute won); KWD K1 1000.000 + K3 99.000 (K2 paid; its refund reopens nothing).
    assert expected == {"USD": "1480.00", "JPY": "100000", "KWD": "1099.000"}
    report = aging(ledger, D).as_json()["currencies"]
    assert {c: figures["total"] for c, figures in report.items()} == expected
    assert {c: k["ar"] for c, k in kpis(ledger, D).as_json()["currencies"].items()} == expected


def test_kpis_read_disputes_and_write_offs_from_the_mirror(ledger: Ledger) -> None:
    load(ledger)
    report = kpis(ledger, D).as_json()
    usd, jpy, kwd = (report["currencies"][c] for c in ("USD", "JPY", "KWD"))
    # Open disputes: A3 (open, funds withdrawn) and A7 (inquiry, nothing withdrawn); A2's
    # was lost and J3's won. The oldest, A3's, opened 03-01: 30 days before D.
    assert report["open_disputes"] == {
        "count": 2, "oldest_age_days": 30, "oldest_deal_id": "deal-A3"}  # fmt: skip
    assert (usd["disputed"], jpy["disputed"], kwd["disputed"]) == ("300.00", "0", "0.000")
    # Written off: A5 900 - 100 = 800.00; J2 70000.
    assert usd["write_offs"] == {"count": 1, "amount": "800.00"}
    assert jpy["write_offs"] == {"count": 1, "amount": "70000"}
    assert kwd["write_offs"] == {"count": 0, "amount": "0.000"}
