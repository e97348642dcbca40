"""Salesforce: closed-won deals in, money state written back (simple-salesforce).

The SDK is imported only inside this package; the engine sees canonical models,
`Checkpointed` items and `ConnectorError`s.
"""

from connectors.salesforce.client import Quota, SalesforceClient
from connectors.salesforce.convert import DealRejected
from connectors.salesforce.fields import DealFieldPaths, WriteBackFields
from connectors.salesforce.session import DecimalSession
from connectors.salesforce.source import SalesforceDealSource

__all__ = [
    "DealFieldPaths",
    "DealRejected",
    "DecimalSession",
    "Quota",
    "SalesforceClient",
    "SalesforceDealSource",
    "WriteBackFields",
]
