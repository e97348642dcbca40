"""The Ledger facade: every store over one engine, as one object to pass around.

Each store is a small class with one job (see the modules named below); Ledger only
puts them side by side so callers write ``ledger.enqueue(...)`` rather than wiring
twelve objects. The stores share nothing but the engine and the clock.
"""

from __future__ import annotations

from sync.ledger.ar_reads import ArReads
from sync.ledger.audit import AuditStore
from sync.ledger.customers import CustomerLinkStore
from sync.ledger.deals import DealStore
from sync.ledger.discrepancies import DiscrepancyStore
from sync.ledger.inbox import InboxStore
from sync.ledger.invoice_money import InvoiceMoneyStore
from sync.ledger.invoices import InvoiceStore, PaymentStore
from sync.ledger.leases import LeaseStore, RunStore
from sync.ledger.metrics_reads import MetricsReads
from sync.ledger.ops_reads import OpsReads
from sync.ledger.ops_sessions import OpsSessionStore
from sync.ledger.queue import WorkQueue
from sync.ledger.queue_admin import QueueAdmin
from sync.ledger.state import CredentialStore, CursorStore


class Ledger(
    LeaseStore,
    RunStore,
    DealStore,
    InvoiceStore,
    InvoiceMoneyStore,
    PaymentStore,
    InboxStore,
    WorkQueue,
    QueueAdmin,
    DiscrepancyStore,
    CursorStore,
    CredentialStore,
    CustomerLinkStore,
    AuditStore,
    OpsSessionStore,
    OpsReads,
    ArReads,
    MetricsReads,
):
    """billsync's durable state on SQLite or PostgreSQL (same behaviour on both).

    ``Ledger(engine)`` assumes the schema is at head (see ``migrate.upgrade_to_head``);
    ``clock`` is injectable so tests can move time for leases and retries.
    """
