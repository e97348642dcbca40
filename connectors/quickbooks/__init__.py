"""QuickBooks Online: invoices exactly once, payments back (python-quickbooks, intuit-oauth).

The SDKs are imported only inside this package; the engine sees canonical models,
`Checkpointed` items and `ConnectorError`s. Modules: `auth` (tokens through the ledger),
`client` (transport, error table), `limits`, `catalog`, `customers`, `actions`
(invoice writes), `feed` + `events` (payments back), `webhooks`, `convert`, `query`.
"""

from billsync.connectors.quickbooks.auth import AuthGateway, TokenManager, TokenSet, credential_name
from billsync.connectors.quickbooks.catalog import QboCatalog
from billsync.connectors.quickbooks.client import QboClient
from billsync.connectors.quickbooks.connector import QuickBooksConnector
from billsync.connectors.quickbooks.feed import QboPaymentFeed
from billsync.connectors.quickbooks.webhooks import QboWebhookVerifier

__all__ = [
    "AuthGateway",
    "QboCatalog",
    "QboClient",
    "QboPaymentFeed",
    "QboWebhookVerifier",
    "QuickBooksConnector",
    "TokenManager",
    "TokenSet",
    "credential_name",
]
