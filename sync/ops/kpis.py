"""AR KPIs over a window (`billsync report kpis`).

The window is the ``days`` days ending at the as-of date D: from S = D − days
(exclusive) to D (inclusive). AR(X) is the sum of open balances of receivable invoices
on day X (the aging total, see `ar_book`); "current AR" is its not-yet-due part.
Money figures are per currency and never summed across currencies.

- Credit sales: the totals of invoices issued in the window (void, deleted and draft
  invoices are not sales; ones written off later were).
- DSO (days sales outstanding) = AR(D) ÷ credit sales × days. Undefined (null)
  without credit sales.
- CEI (collection effectiveness index) =
      (AR(S) + credit sales − AR(D)) ÷ (AR(S) + credit sales − current AR(D)) × 100.
  100 means everything collectible was collected. Undefined when the denominator is 0.
- Billing accuracy = invoices issued in the window whose deal has no billing
  discrepancy (``BILLING_KINDS``, open or resolved) ÷ all invoices billsync issued in
  the window, × 100. Payment-side discrepancies (a partial or over-payment, a payment
  for an unknown invoice) and deal-source write-back ones describe what customers or
  the deal source did, not the invoice, so they do not count against it.
- Average days to pay: over the invoices settled in the window, the mean of
  (settlement day − issue day), where the settlement is the payment or credit after
  which nothing is due (`Book.settled_on`). A later refund or dispute does not undo it:
  neither reopens the balance. Voided, deleted and written-off invoices were not paid.
- Open disputes: the invoices' open disputes on D (``open_disputes`` of their money
  state: inquiries included, won and lost ones not): how many, the age in days on D of
  the oldest, its deal, and per currency the funds they withdrew (``disputed``).
- Write-offs: invoices now marked uncollectible with something still due, issued by D:
  count and amount (``written_off``, the balance due) per currency. The ledger keeps no
  date for the write-off itself, so this is every write-off to date, not only those in
  the window.

``connection`` restricts every figure to one connection's invoices (``qbo_uk``).

Ratios and day counts are decimal strings rounded half up to one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from billsync.core import money
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.ar_reads import ArInvoice
from billsync.sync.ledger.types import exact_sum
from billsync.sync.ops.aging import age_book
from billsync.sync.ops.ar_book import NOT_SALES, Book
from billsync.sync.ops.render import decimal_str, money_str, ratio

DEFAULT_DAYS = 90
BILLING_KINDS = (
    "deal_amount_mismatch",
    "invoice_total_mismatch",
    "currency_mismatch",
    "deal_changed_after_invoice",
    "invoice_missing_in_target",
    "invoice_voided_out_of_band",
    "duplicate_invoice_for_deal",
)
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class CurrencyKpis:
    currency: str
    ar: Decimal
    beginning_ar: Decimal
    ending_current_ar: Decimal
    credit_sales: Decimal
    dso_days: Decimal | None
    cei_percent: Decimal | None
    write_off_count: int
    write_off_amount: Decimal
    disputed_amount: Decimal

    def as_json(self) -> dict[str, Any]:
        c = self.currency
        return {
            "ar": money_str(self.ar, c),
            "beginning_ar": money_str(self.beginning_ar, c),
            "ending_current_ar": money_str(self.ending_current_ar, c),
            "credit_sales": money_str(self.credit_sales, c),
            "dso_days": decimal_str(self.dso_days),
            "cei_percent": decimal_str(self.cei_percent),
            "write_offs": {
                "count": self.write_off_count,
                "amount": money_str(self.write_off_amount, c),
            },
            "disputed": money_str(self.disputed_amount, c),
        }


@dataclass(frozen=True)
class KpiReport:
    as_of: date
    days: int
    currencies: dict[str, CurrencyKpis]
    issued: int
    issued_without_discrepancy: int
    paid_invoices: int
    average_days_to_pay: Decimal | None
    open_disputes: int
    oldest_dispute_days: int | None
    oldest_dispute_deal: str | None

    @property
    def window_start(self) -> date:
        """The first day inside the window."""
        return self.as_of - timedelta(days=self.days - 1)

    @property
    def billing_accuracy(self) -> Decimal | None:
        return ratio(Decimal(self.issued_without_discrepancy) * _HUNDRED, Decimal(self.issued))

    def as_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "window_days": self.days,
            "window": {"from": self.window_start.isoformat(), "to": self.as_of.isoformat()},
            "currencies": {c: k.as_json() for c, k in sorted(self.currencies.items())},
            "billing_accuracy": {
                "issued": self.issued,
                "without_discrepancy": self.issued_without_discrepancy,
                "rate_percent": decimal_str(self.billing_accuracy),
            },
            "average_days_to_pay": {
                "invoices": self.paid_invoices,
                "days": decimal_str(self.average_days_to_pay),
            },
            "open_disputes": {
                "count": self.open_disputes,
                "oldest_age_days": self.oldest_dispute_days,
                "oldest_deal_id": self.oldest_dispute_deal,
            },
        }


def _in_window(day: date, start: date, end: date) -> bool:
    return start < day <= end


def _ar_by_currency(book: Book, day: date) -> dict[str, Decimal]:
    """AR on ``day`` per currency (0 for a currency with nothing open)."""
    open_balances: dict[str, list[Decimal]] = {c: [] for c in book.currencies()}
    for invoice in book.invoices:
        balance = book.receivable(invoice, day)
        if balance is not None:
            open_balances[invoice.currency].append(balance)
    return {currency: exact_sum(amounts) for currency, amounts in open_balances.items()}


def _currency_kpis(
    book: Book,
    currency: str,
    start: date,
    days: int,
    ar: tuple[Decimal, Decimal, Decimal],
) -> CurrencyKpis:
    """``ar``: AR at the start, at the end, and its not-yet-due part at the end."""
    end = book.as_of
    mine = [invoice for invoice in book.invoices if invoice.currency == currency]
    ar_start, ar_end, current = ar
    sales = exact_sum(
        [i.total for i in mine if i.status not in NOT_SALES and _in_window(i.issued, start, end)]
    )
    dso = ratio(ar_end * days, sales)
    collected = exact_sum([ar_start, sales, ar_end.copy_negate()])
    collectible = exact_sum([ar_start, sales, current.copy_negate()])
    cei = ratio(collected * _HUNDRED, collectible)
    states = [book.state_at(i, end) for i in mine]
    written_off = [s.written_off for s in states if s.written_off > 0]
    return CurrencyKpis(
        currency=currency,
        ar=ar_end,
        beginning_ar=ar_start,
        ending_current_ar=current,
        credit_sales=sales,
        dso_days=dso,
        cei_percent=cei,
        write_off_count=len(written_off),
        write_off_amount=_money_sum(written_off, currency),
        disputed_amount=_money_sum([s.disputed for s in states], currency),
    )


def _money_sum(amounts: list[Decimal], currency: str) -> Decimal:
    """An exact sum, shown in the currency's minor unit even when empty."""
    return exact_sum([money.quantize(0, currency), *amounts])


def _days_to_pay(book: Book, start: date) -> tuple[int, Decimal | None]:
    spans = []
    for invoice in book.invoices:
        settled = book.settled_on(invoice)
        if settled is not None and _in_window(settled, start, book.as_of):
            spans.append(max(0, (settled - invoice.issued).days))
    return len(spans), ratio(Decimal(sum(spans)), Decimal(len(spans)))


@dataclass(frozen=True)
class _Disputes:
    count: int
    oldest_since: date | None
    oldest_deal: str | None


def _disputes(book: Book) -> _Disputes:
    """Open disputes on ``as_of``: the count the money states give, and the oldest."""
    count, oldest = 0, None
    for invoice in book.invoices:
        n = book.state_at(invoice, book.as_of).open_disputes
        if not n:
            continue
        count += n
        since = book.open_dispute_since(invoice, book.as_of)
        if since is not None and (oldest is None or since < oldest[0]):
            oldest = (since, invoice.deal_id)
    if oldest is None:
        return _Disputes(count, None, None)
    return _Disputes(count, oldest[0].date(), oldest[1])


def _billing(ledger: Ledger, invoices: list[ArInvoice], start: date, end: date) -> tuple[int, int]:
    issued = [
        i
        for i in invoices
        if i.deal_id is not None and i.status != "draft" and _in_window(i.issued, start, end)
    ]
    flagged = ledger.deals_with_discrepancy(BILLING_KINDS)
    clean = [i for i in issued if (i.deal_id, i.target) not in flagged]
    return len(issued), len(clean)


def kpis(
    ledger: Ledger,
    as_of: date,
    *,
    days: int = DEFAULT_DAYS,
    currency: str | None = None,
    connection: str | None = None,
) -> KpiReport:
    if days < 1:
        raise ValueError("the KPI window needs at least one day")
    book = Book.load(ledger, as_of, currency, connection=connection)
    start = as_of - timedelta(days=days)
    aged = age_book(book).currencies
    at_start, at_end = _ar_by_currency(book, start), _ar_by_currency(book, as_of)
    by_currency = {
        c: _currency_kpis(
            book, c, start, days, (at_start[c], at_end[c], aged[c].bucket_total("current"))
        )
        for c in book.currencies()
    }
    disputes = _disputes(book)
    issued, clean = _billing(ledger, book.invoices, start, as_of)
    paid, average = _days_to_pay(book, start)
    return KpiReport(
        as_of=as_of,
        days=days,
        currencies=by_currency,
        issued=issued,
        issued_without_discrepancy=clean,
        paid_invoices=paid,
        average_days_to_pay=average,
        open_disputes=disputes.count,
        oldest_dispute_days=(
            None if disputes.oldest_since is None else (as_of - disputes.oldest_since).days
        ),
        oldest_dispute_deal=disputes.oldest_deal,
    )
