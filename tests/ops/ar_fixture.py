"""The hand-built AR book of test_ar_reports (its docstring lists every invoice and
its money), shared with the CLI report tests and the ops server tests.

Each invoice is written as billsync writes it (``upsert_invoice``: dates, customer,
deal) and then its money as the target shows it: one ``record_invoice_money`` per
invoice, carrying all of its facts, as a fresh read of the target would.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from billsync.core.canonical import FactState, InvoiceMoney, InvoiceStatus, MoneyFact, MoneyFactKind
from billsync.sync.ledger import Ledger

D = date(2026, 3, 31)

PAYMENT, CREDIT, REFUND, DISPUTE = (
    MoneyFactKind.PAYMENT,
    MoneyFactKind.CREDIT,
    MoneyFactKind.REFUND,
    MoneyFactKind.DISPUTE,
)


def at(day: str, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def fact(fact_id: str, kind: MoneyFactKind, amount: str, when: datetime,
         state: FactState = FactState.APPLIED) -> MoneyFact:  # fmt: skip
    return MoneyFact(fact_id=fact_id, kind=kind, state=state, amount=Decimal(amount),
                     occurred_at=when)  # fmt: skip


def invoice(ledger: Ledger, target: str, ref: str, currency: str, total: str, status: str,
            issued: str, due: str | None, customer: str, *facts: MoneyFact) -> None:  # fmt: skip
    ledger.upsert_invoice(
        target=target, external_id=ref, currency=currency, total=Decimal(total),
        status=status, deal_id=f"deal-{ref}", number=ref, issue_date=date.fromisoformat(issued),
        due_date=date.fromisoformat(due) if due else None,
        account_id=f"001-{customer.lower()}", customer_name=customer,
    )  # fmt: skip
    record(ledger, target, ref, currency, total, status, *facts)


def record(ledger: Ledger, target: str, ref: str, currency: str, total: str, status: str,
           *facts: MoneyFact) -> None:  # fmt: skip
    """The invoice's money as its target shows it (no tax in this book)."""
    amount = Decimal(total)
    ledger.record_invoice_money(
        InvoiceMoney(
            target=target,
            external_id=ref,
            currency=currency,
            status=InvoiceStatus(status),
            net=amount,
            tax=amount * 0,
            total=amount,
            facts=facts,
        )
    )


def build_book(ledger: Ledger) -> Ledger:
    q, s = "quickbooks", "stripe"
    invoice(ledger, q, "U1", "USD", "1000.00", "open", "2026-03-20", "2026-04-19", "Acme",
            fact("p-u1", PAYMENT, "400.00", at("2026-03-25")))  # fmt: skip
    invoice(ledger, q, "U2", "USD", "2500.00", "open", "2026-01-10", "2026-02-09", "Acme",
            fact("p-u2", PAYMENT, "500.00", at("2026-02-01")),
            fact("cn-u2", CREDIT, "250.00", at("2026-03-05")))  # fmt: skip
    # U3's payment was voided in the target: the next read no longer shows it.
    invoice(ledger, s, "U3", "USD", "350.00", "open", "2025-11-01", "2025-12-01", "Beta",
            fact("p-u3", PAYMENT, "100.00", at("2026-03-01")))  # fmt: skip
    record(ledger, s, "U3", "USD", "350.00", "open")
    invoice(ledger, s, "U4", "USD", "800.00", "paid", "2026-02-15", "2026-03-17", "Beta",
            fact("p-u4", PAYMENT, "800.00", at("2026-03-10")))  # fmt: skip
    invoice(ledger, q, "U5", "USD", "5000.00", "uncollectible", "2025-10-01", "2025-10-31",
            "Gamma", fact("p-u5", PAYMENT, "1000.00", at("2025-11-15")))  # fmt: skip
    invoice(ledger, s, "U6", "USD", "999.00", "void", "2026-02-01", "2026-03-03", "Beta")
    invoice(ledger, q, "U7", "USD", "120.00", "paid", "2026-03-31", "2026-03-31", "Delta",
            fact("p-u7", PAYMENT, "120.00", at("2026-04-02")))  # fmt: skip
    invoice(ledger, q, "U8", "USD", "700.00", "paid", "2025-12-15", "2026-01-14", "Acme",
            fact("p-u8", PAYMENT, "700.00", at("2026-01-20")))  # fmt: skip
    invoice(ledger, q, "U9", "USD", "100.00", "paid", "2026-02-20", "2026-03-22", "Delta",
            fact("p-u9", PAYMENT, "60.00", at("2026-03-01")),
            fact("cn-u9", CREDIT, "40.00", at("2026-03-08")))  # fmt: skip
    invoice(ledger, s, "E1", "EUR", "1200.00", "open", "2026-01-05", "2026-02-04", "Zeta",
            fact("p-e1", PAYMENT, "200.00", at("2026-02-10")),
            fact("r-e1", REFUND, "50.00", at("2026-02-20"), FactState.SUCCEEDED))  # fmt: skip
    invoice(ledger, s, "E2", "EUR", "400.00", "paid", "2025-12-20", "2026-01-19", "Omega",
            fact("p-e2", PAYMENT, "400.00", at("2026-01-10")),
            fact("dp-e2", DISPUTE, "400.00", at("2026-02-15"), FactState.OPEN))  # fmt: skip
    invoice(ledger, s, "J1", "JPY", "150000", "open", "2026-02-01", "2026-03-03", "Nakamura",
            fact("p-j1", PAYMENT, "50000", at("2026-03-31", 23, 30)))  # fmt: skip
    invoice(ledger, s, "J2", "JPY", "30000", "open", "2026-03-15", None, "Nakamura")
    # Discrepancies: U2 a billing error (open), E1 one resolved since (still an error),
    # U3 a billing error outside the window, J1 a payment-side one (not a billing error).
    ledger.record_discrepancy("invoice_total_mismatch", "deal-U2", q, "2500.00", "2400.00")
    ledger.record_discrepancy("deal_changed_after_invoice", "deal-E1", s, "a", "b")
    ledger.resolve_discrepancy("deal_changed_after_invoice", "deal-E1", s)
    ledger.record_discrepancy("invoice_total_mismatch", "deal-U3", s, "350.00", "300.00")
    ledger.record_discrepancy("partial_payment", "deal-J1", s, "150000", "50000")
    return ledger
