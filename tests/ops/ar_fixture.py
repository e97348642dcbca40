"""The hand-built AR book of test_ar_reports (its docstring lists every invoice and
payment), shared with the CLI report tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sync.ledger import Ledger

D = date(2026, 3, 31)


def at(day: str, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def invoice(ledger: Ledger, target: str, ref: str, currency: str, total: str, status: str,
            issued: str, due: str | None, customer: str) -> None:  # fmt: skip
    ledger.upsert_invoice(
        target=target, external_id=ref, currency=currency, total=Decimal(total),
        status=status, deal_id=f"deal-{ref}", number=ref, issue_date=date.fromisoformat(issued),
        due_date=date.fromisoformat(due) if due else None,
        account_id=f"001-{customer.lower()}", customer_name=customer,
    )  # fmt: skip


def pay(ledger: Ledger, target: str, ref: str, pid: str, kind: str, amount: str,
        currency: str, when: datetime) -> None:  # fmt: skip
    assert ledger.record_payment(
        provider=target, provider_payment_id=pid, invoice_target=target,
        invoice_external_id=ref, kind=kind, amount=Decimal(amount), currency=currency,
        occurred_at=when,
    )  # fmt: skip


def build_book(ledger: Ledger) -> Ledger:
    q, s = "quickbooks", "stripe"
    invoice(ledger, q, "U1", "USD", "1000.00", "open", "2026-03-20", "2026-04-19", "Acme")
    pay(ledger, q, "U1", "p-u1", "payment", "400.00", "USD", at("2026-03-25"))
    invoice(ledger, q, "U2", "USD", "2500.00", "open", "2026-01-10", "2026-02-09", "Acme")
    pay(ledger, q, "U2", "p-u2", "payment", "500.00", "USD", at("2026-02-01"))
    pay(ledger, q, "U2", "cn-u2", "credit", "250.00", "USD", at("2026-03-05"))
    invoice(ledger, s, "U3", "USD", "350.00", "open", "2025-11-01", "2025-12-01", "Beta")
    pay(ledger, s, "U3", "p-u3", "payment", "100.00", "USD", at("2026-03-01"))
    assert ledger.void_payments(s, "p-u3")
    invoice(ledger, s, "U4", "USD", "800.00", "paid", "2026-02-15", "2026-03-17", "Beta")
    pay(ledger, s, "U4", "p-u4", "payment", "800.00", "USD", at("2026-03-10"))
    invoice(ledger, q, "U5", "USD", "5000.00", "uncollectible", "2025-10-01", "2025-10-31",
            "Gamma")  # fmt: skip
    pay(ledger, q, "U5", "p-u5", "payment", "1000.00", "USD", at("2025-11-15"))
    invoice(ledger, s, "U6", "USD", "999.00", "void", "2026-02-01", "2026-03-03", "Beta")
    invoice(ledger, q, "U7", "USD", "120.00", "paid", "2026-03-31", "2026-03-31", "Delta")
    pay(ledger, q, "U7", "p-u7", "payment", "120.00", "USD", at("2026-04-02"))
    invoice(ledger, q, "U8", "USD", "700.00", "paid", "2025-12-15", "2026-01-14", "Acme")
    pay(ledger, q, "U8", "p-u8", "payment", "700.00", "USD", at("2026-01-20"))
    invoice(ledger, q, "U9", "USD", "100.00", "paid", "2026-02-20", "2026-03-22", "Delta")
    pay(ledger, q, "U9", "p-u9", "payment", "60.00", "USD", at("2026-03-01"))
    pay(ledger, q, "U9", "cn-u9", "credit", "40.00", "USD", at("2026-03-08"))
    invoice(ledger, s, "E1", "EUR", "1200.00", "open", "2026-01-05", "2026-02-04", "Zeta")
    pay(ledger, s, "E1", "p-e1", "payment", "200.00", "EUR", at("2026-02-10"))
    pay(ledger, s, "E1", "r-e1", "refund", "50.00", "EUR", at("2026-02-20"))
    invoice(ledger, s, "E2", "EUR", "400.00", "open", "2025-12-20", "2026-01-19", "Omega")
    pay(ledger, s, "E2", "p-e2", "payment", "400.00", "EUR", at("2026-01-10"))
    pay(ledger, s, "E2", "dp-e2", "chargeback", "400.00", "EUR", at("2026-02-15"))
    ledger.record_intent("deal-E2", s, "rev", "key-e2")
    ledger.set_deal_state("deal-E2", s, "disputed", external_invoice_id="E2")
    invoice(ledger, s, "J1", "JPY", "150000", "open", "2026-02-01", "2026-03-03", "Nakamura")
    pay(ledger, s, "J1", "p-j1", "payment", "50000", "JPY", at("2026-03-31", 23, 30))
    invoice(ledger, s, "J2", "JPY", "30000", "open", "2026-03-15", None, "Nakamura")
    # Discrepancies: U2 a billing error (open), E1 one resolved since (still an error),
    # U3 a billing error outside the window, J1 a payment-side one (not a billing error).
    ledger.record_discrepancy("invoice_total_mismatch", "deal-U2", q, "2500.00", "2400.00")
    ledger.record_discrepancy("deal_changed_after_invoice", "deal-E1", s, "a", "b")
    ledger.resolve_discrepancy("deal_changed_after_invoice", "deal-E1", s)
    ledger.record_discrepancy("invoice_total_mismatch", "deal-U3", s, "350.00", "300.00")
    ledger.record_discrepancy("partial_payment", "deal-J1", s, "150000", "50000")
    return ledger
