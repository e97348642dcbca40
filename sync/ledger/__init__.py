"""The ledger: billsync's durable memory (SQLite by default, PostgreSQL to scale out).

Everything that must survive a crash lives here: intents before vendor calls, the
retry queue, the webhook inbox, payments, discrepancies, cursors, rotating
credentials and the audit trail. Typical wiring::

    engine = create_ledger_engine(settings.ledger_url)
    upgrade_to_head(engine)
    ledger = Ledger(engine)
"""

from billsync.sync.ledger.database import (
    DEFAULT_URL,
    LedgerConfigError,
    create_ledger_engine,
    describe_url,
    normalize_url,
)
from billsync.sync.ledger.deals import UNSET, IntentConflict
from billsync.sync.ledger.leases import Fence, LeaseLost
from billsync.sync.ledger.migrate import (
    current_revision,
    head_revision,
    is_current,
    upgrade_to_head,
)
from billsync.sync.ledger.models import (
    AuditEntry,
    DealRecord,
    DealState,
    Discrepancy,
    InboxEvent,
    InboxStatus,
    InvoiceRecord,
    Lease,
    PaymentRecord,
    Run,
    StoredCredentials,
    WorkItem,
    WorkStatus,
)
from billsync.sync.ledger.queue_admin import INVALID_DATA, work_subject
from billsync.sync.ledger.repository import Ledger
from billsync.sync.ledger.types import Money, UTCDateTime

__all__ = [
    "DEFAULT_URL",
    "INVALID_DATA",
    "UNSET",
    "AuditEntry",
    "DealRecord",
    "DealState",
    "Discrepancy",
    "Fence",
    "InboxEvent",
    "InboxStatus",
    "IntentConflict",
    "InvoiceRecord",
    "Lease",
    "LeaseLost",
    "Ledger",
    "LedgerConfigError",
    "Money",
    "PaymentRecord",
    "Run",
    "StoredCredentials",
    "UTCDateTime",
    "WorkItem",
    "WorkStatus",
    "create_ledger_engine",
    "current_revision",
    "describe_url",
    "head_revision",
    "is_current",
    "normalize_url",
    "upgrade_to_head",
    "work_subject",
]
