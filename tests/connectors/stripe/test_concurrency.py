"""Contract: `create_invoices` creates up to ``stripe.concurrency`` invoices at a time
against the sandbox, each exactly once, and a refused key still stops the batch after
one call (the first draft goes alone)."""

from __future__ import annotations

import threading
from typing import Any

from billsync.core.canonical import InvoiceDraft, InvoiceRef
from billsync.core.protocols import ConnectorError
from tests.connectors.stripe.support import ConnectorEnv, customer, draft


class InFlight:
    """Wraps `create_invoice` to record how many ran at once."""

    def __init__(self, target: Any) -> None:
        self._create = target.create_invoice
        self._lock = threading.Lock()
        self.now = self.peak = 0
        self.threads: set[str] = set()
        target.create_invoice = self

    def __call__(self, draft_: InvoiceDraft, **options: Any) -> InvoiceRef:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.threads.add(threading.current_thread().name)
        try:
            return self._create(draft_, **options)  # type: ignore[no-any-return]
        finally:
            with self._lock:
                self.now -= 1


def _drafts(env: ConnectorEnv, n: int) -> list[InvoiceDraft]:
    known = env.connect().target.ensure_customer(customer())
    return [draft(customer_=known, deal_id=f"006C{i:03d}") for i in range(n)]


def test_invoices_are_created_concurrently_and_each_once(env: ConnectorEnv) -> None:
    drafts = _drafts(env, 13)
    env.faults(latency_ms=40)  # calls overlap only if they wait
    target = env.connect(concurrency=4).target
    watch = InFlight(target)
    results = target.create_invoices(drafts)
    env.faults()
    assert sorted(results) == sorted(d.deal_id for d in drafts)
    assert all(isinstance(r, InvoiceRef) for r in results.values())
    per_deal: dict[str, int] = {}
    for inv in env.invoices():
        deal = inv["metadata"].get("billsync_deal_id")
        per_deal[deal] = per_deal.get(deal, 0) + 1
    assert per_deal == {d.deal_id: 1 for d in drafts}
    assert 2 <= watch.peak <= 4, watch.peak
    assert len({t for t in watch.threads if t.startswith("stripe")}) >= 2


def test_concurrency_one_creates_one_at_a_time(env: ConnectorEnv) -> None:
    drafts = _drafts(env, 4)
    target = env.connect(concurrency=1).target
    watch = InFlight(target)
    results = target.create_invoices(drafts)
    assert not any(isinstance(r, ConnectorError) for r in results.values())
    assert watch.peak == 1
