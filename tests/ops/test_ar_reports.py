"""Aging and KPI figures against numbers computed by hand, on SQLite and PostgreSQL.

The book (as of D = 2026-03-31; the KPI window is the 90 days 2026-01-01..2026-03-31,
so S = 2025-12-31):

USD
  U1  1000.00  issued 03-20 due 04-19  Acme   paid 400.00 on 03-25               open
  U2  2500.00  issued 01-10 due 02-09  Acme   paid 500.00 on 02-01, credit note
                                              250.00 on 03-05; total mismatch       open
  U3   350.00  issued 2025-11-01 due 2025-12-01 Beta; a 100.00 payment on 03-01 was
                                              voided (never counts)                 open
  U4   800.00  issued 02-15 due 03-17  Beta   paid 800.00 on 03-10                  paid
  U5  5000.00  issued 2025-10-01 due 2025-10-31 Gamma; paid 1000.00 on 2025-11-15;
                                              written off                  uncollectible
  U6   999.00  issued 02-01 due 03-03  Beta                                         void
  U7   120.00  issued 03-31 due 03-31  Delta  paid 120.00 on 04-02 (after D)        paid
  U8   700.00  issued 2025-12-15 due 2026-01-14 Acme; paid 700.00 on 01-20         paid
  U9   100.00  issued 02-20 due 03-22  Delta  paid 60.00 on 03-01, credit note
                                              40.00 on 03-08                        paid
EUR
  E1  1200.00  issued 01-05 due 02-04  Zeta   paid 200.00 on 02-10, refunded 50.00
                                              on 02-20; deal changed (resolved)    open
  E2   400.00  issued 2025-12-20 due 2026-01-19 Omega; paid 400.00 on 01-10, a
                                              dispute of 400.00 opened on 02-15 and
                                              still open (funds withdrawn)          paid
JPY
  J1  150000   issued 02-01 due 03-03  Nakamura  paid 50000 on 03-31 23:30 UTC
                                              (inside D); a partial_payment
                                              discrepancy (not a billing error)     open
  J2   30000   issued 03-15, no due date  Nakamura                                  open

Each invoice's money is the ledger's mirror of its target (`billsync.core.money_state`): balance
due = total − paid − credited. Two figures changed on purpose when the reports moved to
it (they used to add up payment events, where a refund and a chargeback reopened the
balance):

- E1: the 50.00 refund no longer reopens the balance: 1200 − 200 = 1000.00 open, not
  1050.00 (Stripe keeps a refunded invoice's amount_remaining as it was).
- E2: the open dispute withdraws the 400.00 but no longer reopens the balance: nothing
  is due, so E2 leaves open AR (was 400.00 in 61-90), its customer Omega leaves the
  per-customer aging, and E2 counts as paid on 01-10 in the days to pay. Its dispute
  is still counted: one open, 400.00 disputed.
"""

from __future__ import annotations

from datetime import date

import pytest

from billsync.sync.ledger import Ledger
from billsync.sync.ops.aging import aging, bucket
from billsync.sync.ops.kpis import kpis
from tests.ops.ar_fixture import D, build_book


@pytest.fixture
def book(ledger: Ledger) -> Ledger:
    return build_book(ledger)


def test_buckets_at_their_edges() -> None:
    edges = {-5: "current", 0: "current", 1: "1-30", 30: "1-30", 31: "31-60", 60: "31-60",
             61: "61-90", 90: "61-90", 91: "90+", 400: "90+"}  # fmt: skip
    assert {days: bucket(days) for days in edges} == edges


def test_aging_by_hand(book: Ledger) -> None:
    report = aging(book, D).as_json()
    assert report["as_of"] == "2026-03-31"
    assert report["currencies"] == {
        # current: U1 1000-400 = 600.00 (due 04-19) + U7 120.00 (due today; its payment
        #   on 04-02 is after D) = 720.00
        # 31-60: U2 2500-500-250 = 1750.00 (50 days past 02-09)
        # 90+:   U3 350.00 (120 days past 2025-12-01; the voided payment does not count)
        # U4, U8, U9 are settled; U5 is uncollectible; U6 void.
        "USD": {
            "current": "720.00",
            "1-30": "0.00",
            "31-60": "1750.00",
            "61-90": "0.00",
            "90+": "350.00",
            "total": "2820.00",
        },
        # 31-60: E1 1200-200 = 1000.00 (55 days past 02-04; the refund of 50.00 does not
        #        reopen the balance)
        # E2: 400-400 = 0 due (the open dispute withdrew the funds, it reopens nothing)
        "EUR": {
            "current": "0.00",
            "1-30": "0.00",
            "31-60": "1000.00",
            "61-90": "0.00",
            "90+": "0.00",
            "total": "1000.00",
        },
        # 1-30: J1 150000-50000 = 100000 (28 days past 03-03; paid 23:30 on D counts)
        #       J2 30000 (no due date: aged from its issue date 03-15, 16 days)
        "JPY": {
            "current": "0",
            "1-30": "130000",
            "31-60": "0",
            "61-90": "0",
            "90+": "0",
            "total": "130000",
        },
    }
    assert report["without_due_date"] == 1  # J2


def test_aging_by_customer_and_currency_filter(book: Ledger) -> None:
    report = aging(book, D, by_customer=True).as_json()
    rows = {(r["currency"], r["customer"]): (r["current"], r["31-60"], r["90+"], r["total"])
            for r in report["customers"]}  # fmt: skip
    assert rows[("USD", "Acme")] == ("600.00", "1750.00", "0.00", "2350.00")  # U1 + U2
    assert rows[("USD", "Delta")] == ("120.00", "0.00", "0.00", "120.00")  # U7
    assert rows[("USD", "Beta")] == ("0.00", "0.00", "350.00", "350.00")  # U3
    assert rows[("EUR", "Zeta")][3] == "1000.00"  # E1
    assert ("EUR", "Omega") not in rows  # E2: nothing due (disputed, not reopened)
    assert rows[("JPY", "Nakamura")][3] == "130000"
    assert ("USD", "Gamma") not in rows  # written off
    only_eur = aging(book, D, currency="EUR").as_json()
    assert list(only_eur["currencies"]) == ["EUR"]
    assert only_eur["currencies"]["EUR"]["total"] == "1000.00"


def test_aging_at_an_earlier_date_uses_the_payments_known_then(book: Ledger) -> None:
    # On 2026-01-15: U8 (700.00, due 01-14, paid only on 01-20) is 1 day past due; U2
    # (issued 01-10, due 02-09, nothing paid yet) is current at 2500.00; U3 is 45 days
    # past due (31-60); E2 (paid 01-10) is settled; E1 (issued 01-05) is current.
    report = aging(book, date(2026, 1, 15)).as_json()["currencies"]
    assert report["USD"] == {"current": "2500.00", "1-30": "700.00", "31-60": "350.00",
                             "61-90": "0.00", "90+": "0.00", "total": "3550.00"}  # fmt: skip
    assert report["EUR"]["current"] == "1200.00" and report["EUR"]["total"] == "1200.00"
    assert "JPY" not in report  # nothing issued yet


def test_kpis_by_hand(book: Ledger) -> None:
    report = kpis(book, D, days=90).as_json()
    assert report["window"] == {"from": "2026-01-01", "to": "2026-03-31"}
    usd = report["currencies"]["USD"]
    # AR(D) = 2820.00 (the aging total). AR(S = 2025-12-31) = U3 350.00 + U8 700.00
    # (paid only on 01-20) = 1050.00; U5 is written off.
    # Credit sales (issued 01-01..03-31, not void): U1 1000 + U2 2500 + U4 800 + U7 120
    # + U9 100 = 4520.00.
    # DSO = 2820 / 4520 × 90 = 253800 / 4520 = 56.150… → 56.2
    # CEI = (1050 + 4520 - 2820) / (1050 + 4520 - 720) × 100 = 2750 / 4850 × 100
    #     = 56.701… → 56.7
    # Write-offs: U5, 5000 - 1000 = 4000.00.
    assert usd == {
        "ar": "2820.00", "beginning_ar": "1050.00", "ending_current_ar": "720.00",
        "credit_sales": "4520.00", "dso_days": "56.2", "cei_percent": "56.7",
        "write_offs": {"count": 1, "amount": "4000.00"}, "disputed": "0.00",
    }  # fmt: skip
    eur = report["currencies"]["EUR"]
    # AR(D) = E1 1000.00 (E2 has nothing due); AR(S) = E2 400.00 (paid only on 01-10);
    # sales = E1 1200.00 (E2 was issued before the window).
    # DSO = 1000 × 90 / 1200 = 75.0 (was 108.8 with E1 at 1050 and E2 at 400)
    # CEI = (400 + 1200 - 1000) / (400 + 1200 - 0) × 100 = 600 / 1600 × 100 = 37.5
    #     (was 9.4)
    # Disputed: E2's open dispute withdrew 400.00.
    assert eur == {
        "ar": "1000.00", "beginning_ar": "400.00", "ending_current_ar": "0.00",
        "credit_sales": "1200.00", "dso_days": "75.0", "cei_percent": "37.5",
        "write_offs": {"count": 0, "amount": "0.00"}, "disputed": "400.00",
    }  # fmt: skip
    jpy = report["currencies"]["JPY"]
    # AR(D) = 130000; AR(S) = 0; sales = 150000 + 30000 = 180000.
    # DSO = 130000 × 90 / 180000 = 65.0; CEI = 50000 / 180000 × 100 = 27.77… → 27.8
    assert (jpy["ar"], jpy["beginning_ar"], jpy["credit_sales"]) == ("130000", "0", "180000")
    assert (jpy["dso_days"], jpy["cei_percent"]) == ("65.0", "27.8")
    # Billing accuracy: issued in the window: U1 U2 U4 U6 U7 U9 E1 J1 J2 = 9; with a
    # billing discrepancy: U2 (open) and E1 (resolved) → 7 / 9 × 100 = 77.77… → 77.8.
    # (U3's is outside the window; J1's partial payment is not a billing error.)
    assert report["billing_accuracy"] == {
        "issued": 9, "without_discrepancy": 7, "rate_percent": "77.8"}  # fmt: skip
    # Days to pay, settled in the window: U8 01-20 − 2025-12-15 = 36; U4 03-10 − 02-15 =
    # 23; U9 settled by its credit note 03-08 − 02-20 = 16; E2 01-10 − 2025-12-20 = 21
    # (its dispute on 02-15 does not reopen it) → (36 + 23 + 16 + 21) / 4 = 24.0 (was
    # 25.0 over 3, E2 left out as reopened). U7 is paid after D; U5 is written off.
    assert report["average_days_to_pay"] == {"invoices": 4, "days": "24.0"}
    # One open dispute (E2), opened on 02-15: 44 days old on 03-31.
    assert report["open_disputes"] == {
        "count": 1, "oldest_age_days": 44, "oldest_deal_id": "deal-E2"}  # fmt: skip


def test_kpis_are_undefined_without_sales(book: Ledger) -> None:
    # A 10-day window 2026-03-01..03-10 in EUR: no EUR invoice issued → no DSO, no CEI;
    # nothing issued at all in EUR → no billing accuracy either.
    report = kpis(book, date(2026, 3, 10), days=10, currency="EUR").as_json()
    eur = report["currencies"]["EUR"]
    assert eur["credit_sales"] == "0.00" and eur["dso_days"] is None
    # CEI: AR(S = 02-28) = E1 1000 (paid 200 on 02-10; the refund on 02-20 reopens
    # nothing) + E2 0 (paid 01-10) = 1000 = AR(D) → (1000 + 0 - 1000) / (1000 + 0 - 0)
    # = 0.0: nothing collected in those ten days.
    assert eur["cei_percent"] == "0.0"
    assert report["billing_accuracy"]["rate_percent"] is None
