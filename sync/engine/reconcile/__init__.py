"""Three-way reconciliation (DESIGN.md "Reconciliation"): deal source (what was sold) ↔
ledger (what we did) ↔ target (what exists).

One pass, in this order (run.py):
1. ledger only, no vendor call: closes what the run stages recorded once the ledger
   shows it no longer holds (an overpayment refunded, an unknown payment later applied,
   a changed deal invoiced at its new content; closing.py), and finds deals the ledger
   holds with no invoice and no work that will make one (``closed_won_not_invoiced``;
   deals.py);
2. ledger ↔ each target: reads back the invoices we created (a bounded, rotating share
   per pass; readback.py) — gone (``invoice_missing_in_target``), voided behind our back
   (``invoice_voided_out_of_band``), total edited (``invoice_total_mismatch``), more
   than one live invoice for the deal (``duplicate_invoice_for_deal``; targets.py), and
   each invoice's money read fresh through its feed (``read_invoice_money``) against
   the ledger's, both ways (``invoice_money_mismatch``), and against the target's own
   figures (``target_figures_unexplained``; money.py);
3. deal source ↔ ledger: won deals the pull has passed but the ledger never saw, when
   the deal source can list won deal ids (queued for the next run to invoice), and
   invoiced deals no longer won (``deal_lost_after_invoice``), when it can read deal
   stages (optional abilities in billsync.core.protocols; deals.py);
4. write-back: invoiced deals whose latest money state is not on the deal
   (``writeback_stale``; writebacks.py).

Rules for every check:
- a discrepancy is one open row per (kind, deal, target) until it no longer holds; it
  is resolved (actor ``reconcile``, audited) only by a check that looked and found the
  facts agree. An invoice that could not be read this pass keeps its rows open.
- the target is the truth about what exists: a void or deletion found out of band and
  an edited total are written into the ledger (status, total) and the deal's write-back
  is queued, so balances, AR and the deal source are right while the discrepancy stays open
  for a person to look at.
- ``fix`` does only mechanical things: queue lost write-backs again, and record the
  target's read of an invoice whose money the ledger has wrong (the deal's write-back
  queued with it). Won deals the pull missed are queued for invoicing on every pass.
- an operator may acknowledge a row (it stays open and listed, but no longer makes
  ``billsync reconcile`` exit 1) or resolve it, each with a note, audited
  (``billsync discrepancies``, the ops API and page).

The ledger queries the pass needs beyond the Ledger facade live in
``billsync.sync.ledger.reconcile_reads``; nothing here touches a table.
"""

from billsync.sync.engine.reconcile.recorder import DEFAULT_LIMIT
from billsync.sync.engine.reconcile.report import Fixed, ReconcileReport
from billsync.sync.engine.reconcile.run import reconcile
from billsync.sync.engine.reconcile.writebacks import _Invoiced as _Invoiced
from billsync.sync.ledger.reconcile_reads import ReconcileReads

_Reads = ReconcileReads  # the name tests/engine/test_reconcile.py reads the ledger by

__all__ = ["DEFAULT_LIMIT", "Fixed", "ReconcileReport", "reconcile"]
