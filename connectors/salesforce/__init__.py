"""Salesforce: closed-won deals in, money state written back (simple-salesforce).

The SDK is imported only inside this package; the engine sees canonical models,
`Checkpointed` items and `ConnectorError`s.
"""

from billsync.connectors.salesforce.client import Quota, SalesforceClient
from billsync.connectors.salesforce.convert import DealRejected
from billsync.connectors.salesforce.fields import DealFieldPaths, WriteBackFields
from billsync.connectors.salesforce.source import SalesforceDealSource

__all__ = [
    "DealFieldPaths",
    "DealRejected",
    "Quota",
    "SalesforceClient",
    "SalesforceDealSource",
    "WriteBackFields",
]
