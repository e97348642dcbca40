"""How many invoices a minute the vendors' rate limits allow at best.

The ceiling is the limit's, not any pipeline's: the fewest calls a correct integration
needs per invoice, spent at exactly the allowed rate (api-facts §2.5, §2.7, §3.9).

- Stripe (test keys, what the sandbox enforces in ``real`` mode): 25 requests/s. An
  invoice needs at least 4 calls — create, add_lines (all lines at once), finalize,
  send — plus one create per new customer.
- QuickBooks: 40 batch requests a minute of at most 30 items, and 500 requests a minute
  in all. Invoices ride in batches (1,200 a minute at most); new customers are created
  with single calls, which spend the 500-a-minute budget instead of the scarce batch
  budget, and those singles plus the 40 batches must stay under 500 a minute.
- A mixed workload finishes when its slower share does: with a share q billed in
  QuickBooks, ``min(qbo / q, stripe / (1 - q))``.
- Over a run shorter than a few minutes a sliding 60 s window lets a full window's
  budget through at once: `window_ceiling` is the most any client can create in T s.
"""

from __future__ import annotations

from fractions import Fraction

STRIPE_REQUESTS_PER_S = 25
STRIPE_CALLS_PER_INVOICE = 4
QBO_BATCHES_PER_MIN = 40
QBO_BATCH_ITEMS = 30
QBO_REQUESTS_PER_MIN = 500
WINDOW_S = 60


def stripe_per_min(invoices: int, new_customers: int) -> float:  # money-ok: a rate
    if invoices == 0:
        return 0.0
    calls = STRIPE_CALLS_PER_INVOICE * invoices + new_customers
    return STRIPE_REQUESTS_PER_S * 60 * invoices / calls


def quickbooks_per_min(invoices: int, new_customers: int) -> float:  # money-ok: a rate
    if invoices == 0:
        return 0.0
    by_batches = QBO_BATCHES_PER_MIN * QBO_BATCH_ITEMS
    requests_per_invoice = Fraction(1, QBO_BATCH_ITEMS) + Fraction(new_customers, invoices)
    by_requests = QBO_REQUESTS_PER_MIN / requests_per_invoice
    return float(min(Fraction(by_batches), by_requests))  # money-ok: a rate


def mixed_per_min(qbo: float, stripe: float, qbo_share: float) -> float:  # money-ok
    if qbo_share <= 0:
        return stripe
    if qbo_share >= 1:
        return qbo
    return min(qbo / qbo_share, stripe / (1 - qbo_share))


def window_ceiling(
    seconds: float, per_window: int = QBO_BATCHES_PER_MIN * QBO_BATCH_ITEMS
) -> int:  # money-ok
    """The most invoices a 60 s sliding window of ``per_window`` lets through in
    ``seconds``: one window's budget at once, then another each time one ends."""
    return per_window * (int(seconds // WINDOW_S) + 1)
