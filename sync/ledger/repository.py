"""The Ledger facade: every store over one engine, as one object to pass around.

Each store is a small class with one job (see the modules named below); Ledger only
puts them side by side so callers write ``ledger.enqueue(...)`` rather than wiring
twelve objects. The stores share nothing but the engine and the clock.
"""

from __future__ import annotations

from billsync.sync.ledger.ar_reads import ArReads
from billsync.sync.ledger.audit import AuditStore
from billsync.sync.ledger.connections import ConnectionStore
from billsync.sync.ledger.customers import CustomerLinkStore
from billsync.sync.ledger.deals import DealStore
from billsync.sync.ledger.discrepancies import DiscrepancyStore
from billsync.sync.ledger.inbox import InboxStore
from billsync.sync.ledger.invoice_money import InvoiceMoneyStore
from billsync.sync.ledger.invoices import InvoiceStore, PaymentStore
from billsync.sync.ledger.leases import LeaseStore, RunStore
from billsync.sync.ledger.metrics_reads import MetricsReads
from billsync.sync.ledger.ops_reads import OpsReads
from billsync.sync.ledger.ops_sessions import OpsSessionStore
from billsync.sync.ledger.queue import WorkQueue
from billsync.sync.ledger.queue_admin import QueueAdmin
from billsync.sync.ledger.state import CredentialStore, CursorStore


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
    ConnectionStore,
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
