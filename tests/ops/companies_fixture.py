"""One deployment with two QuickBooks companies and two Stripe accounts, as the ops
surfaces see it: the configuration naming the four connections, and a ledger holding
each one's invoices, failures and (for the QuickBooks companies) stored tokens, written
directly through the ledger's API. Shared by the ops CLI and ops server tests.

The AR book as of ``D`` (2026-03-31), one open invoice per connection:

    qbo_us     U1  USD 100.00  due 2026-04-19  current
    stripe_us  S1  USD  50.00  due 2026-02-15  31-60 (44 days past due)
    qbo_uk     K1  GBP 200.00  due 2026-03-15  1-30  (16 days)
    stripe_eu  E1  EUR  70.00  due 2026-04-29  current

Open failures: qbo_uk a dead QuickBooks 610 (inactive item), stripe_eu and qbo_us a
transient one each (retried by themselves).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from billsync.connectors.quickbooks import errors as qbo
from billsync.connectors.quickbooks.tokens import TokenSet
from billsync.core.protocols import ConnectorError
from billsync.sync.engine.failures import INVOICE
from billsync.sync.ledger import Ledger
from tests.ops.ar_fixture import D, invoice
from tests.ops.test_advice import invoice_payload, recorder

TARGETS = ("qbo_us", "qbo_uk", "stripe_us", "stripe_eu")
REALMS = {"qbo_us": "9130001", "qbo_uk": "9130002"}
CONFIG = f"""
sync:
  targets: [{", ".join(TARGETS)}]
connections:
  qbo_us: {{kind: quickbooks, realm_id: "{REALMS["qbo_us"]}", client_id: app, client_secret: s1}}
  qbo_uk: {{kind: quickbooks, realm_id: "{REALMS["qbo_uk"]}", client_id: app, client_secret: s2}}
  stripe_us: {{kind: stripe, api_key: sk_test_us0123456789}}
  stripe_eu: {{kind: stripe, api_key: sk_test_eu0123456789}}
"""
DEALS = {"qbo_uk": "006UK", "stripe_eu": "006EU", "qbo_us": "006US"}

__all__ = ["CONFIG", "DEALS", "REALMS", "TARGETS", "D", "seed_companies", "write_config"]


def write_config(directory: Path) -> Path:
    path = directory / "companies.yaml"
    path.write_text(CONFIG)
    return path


def seed_companies(ledger: Ledger, now: datetime) -> None:
    """The book, the failures and the tokens above; ``now``: when the tokens were
    stored (status measures their ages against it)."""
    invoice(ledger, "qbo_us", "U1", "USD", "100.00", "open", "2026-03-20", "2026-04-19", "Acme")
    invoice(ledger, "stripe_us", "S1", "USD", "50.00", "open", "2026-02-01", "2026-02-15", "Beta")
    invoice(ledger, "qbo_uk", "K1", "GBP", "200.00", "open", "2026-03-01", "2026-03-15", "Crown")
    invoice(ledger, "stripe_eu", "E1", "EUR", "70.00", "open", "2026-03-30", "2026-04-29", "Delta")
    rec = recorder(ledger)
    inactive = qbo.fault_error(
        610, "Object Not Found", "Item assigned to this transaction has been deleted. Before "
        "you can modify this transaction, you must restore SKU-9 (deleted).",
    )  # fmt: skip
    rec.failed(INVOICE, DEALS["qbo_uk"], invoice_payload(DEALS["qbo_uk"], "qbo_uk"), inactive,
               "r1")  # fmt: skip
    for connection in ("stripe_eu", "qbo_us"):
        flaky = ConnectorError(system=connection, error_class="transient", code="HTTP 503",
                               message="the service is unavailable; retried")  # fmt: skip
        deal = DEALS[connection]
        rec.failed(INVOICE, deal, invoice_payload(deal, connection), flaky, "r1")
    for realm in REALMS.values():
        tokens = TokenSet(
            refresh_token=f"REFRESH-{realm}", access_token=f"ACCESS-{realm}",
            access_expires_at=now + timedelta(minutes=40),
            refresh_expires_at=now + timedelta(days=60),
            refresh_issued_at=now - timedelta(days=40), connected_at=now - timedelta(days=400),
        )  # fmt: skip
        assert ledger.save_credentials(f"quickbooks:{realm}", tokens.to_data(), None)
