"""QuickBooks Online: invoices exactly once, payments back (python-quickbooks, intuit-oauth).

The SDKs are imported only inside this package; the engine sees canonical models,
`Checkpointed` items and `ConnectorError`s. Modules: `auth` (tokens through the ledger),
`client` (transport, error table), `limits`, `catalog`, `customers`, `actions`
(invoice writes), `feed` + `events` (payments back), `webhooks`, `convert`, `query`.
"""

from connectors.quickbooks.auth import AuthGateway, TokenManager, TokenSet, credential_name
from connectors.quickbooks.catalog import QboCatalog
from connectors.quickbooks.client import QboClient
from connectors.quickbooks.connector import QuickBooksConnector
from connectors.quickbooks.feed import QboPaymentFeed
from connectors.quickbooks.webhooks import QboWebhookVerifier

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
