"""`QuickBooksConnector`: the invoice target and payment feed, wired from settings.

Composition only: tokens (`auth`), transport and error table (`client`), the catalog,
customers, invoice writes (`actions`) and the payment feed, sharing one client — one
token, one set of client-side limits — per company. The webhook verifier is separate
(`QboWebhookVerifier.from_settings`): ``billsync serve`` needs it without a client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

from billsync.connectors.quickbooks.actions import InvoiceWriter
from billsync.connectors.quickbooks.auth import AuthGateway, TokenManager
from billsync.connectors.quickbooks.catalog import QboCatalog
from billsync.connectors.quickbooks.client import QboClient
from billsync.connectors.quickbooks.customers import CustomerResolver
from billsync.connectors.quickbooks.feed import QboPaymentFeed
from billsync.connectors.quickbooks.limits import RequestLimits
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.core.canonical import (
    Customer,
    Discrepancy,
    InvoiceDraft,
    InvoiceMoney,
    InvoiceRef,
    PaymentEvent,
    WebhookNotification,
)
from billsync.core.customer_identity import CustomerOwners, Resolved
from billsync.core.naming import named
from billsync.core.protocols import Checkpointed, ConnectorError, CredentialStore, Cursor

__all__ = ["QuickBooksConnector"]

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class QuickBooksConnector:
    """Implements ``InvoiceTarget`` and ``PaymentFeed`` (billsync/core/protocols.py).

    Beyond the protocols: `ensure_customers` (batch), `take_discrepancies`,
    `void_invoice`, `send_invoice`, and `last_cursor` for the feed (see feed.py).
    ``clock``/``sleep``/``monotonic`` are injectable so tests never wait.
    """

    def __init__(
        self,
        settings: QuickBooksSettings,
        store: CredentialStore,
        *,
        clock: Clock = _utcnow,
        sleep: Sleep = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        gateway: AuthGateway | None = None,
        name: str = "quickbooks",
    ) -> None:
        # The connection's name (`BuildContext.connection`): every invoice, money read,
        # payment event and discrepancy leaves this facade under it.
        self.name = name
        self.settings = settings
        self.tokens = TokenManager(
            settings, store, gateway=gateway, clock=clock, sleep=sleep, connection=name
        )
        limits = RequestLimits(
            requests_per_minute=settings.requests_per_minute,
            max_concurrent=settings.max_concurrent,
            batch_requests_per_minute=settings.batch_requests_per_minute,
            clock=monotonic,
            sleep=sleep,
        )
        self.client = QboClient(settings, self.tokens, limits=limits, sleep=sleep, connection=name)
        self._catalog = QboCatalog(self.client, settings, name=name)
        self.customers = CustomerResolver(self.client, settings, self._catalog)
        self.invoices = InvoiceWriter(
            self.client, settings, self._catalog, self.customers, clock=clock
        )
        self.feed = QboPaymentFeed(self.client, settings, self._catalog, clock=clock)

    @property
    def target(self) -> str:
        return self.name

    @property
    def provider(self) -> str:
        return self.name

    # --- InvoiceTarget -----------------------------------------------------------

    def catalog(self) -> QboCatalog:
        return self._catalog

    def ensure_customer(self, customer: Customer) -> Customer:
        return self.customers.ensure(customer)

    def ensure_customers(
        self, customers: Sequence[Customer]
    ) -> Mapping[str, Customer | ConnectorError]:
        """Several at once (one name query per 50, batch creates): outcome per account id."""
        return self.customers.ensure_many(customers)

    def resolve_customers(
        self, customers: Sequence[Customer], owners: CustomerOwners
    ) -> Mapping[str, Resolved | ConnectorError]:
        """`ensure_customers` under the identity rule, told who holds which customer
        (`billsync.core.customer_identity.MatchesCustomers`); says how each was found."""
        return self.customers.resolve_many(customers, owners)

    def find_invoices(self, deal_id: str, *, reference: str | None = None) -> Sequence[InvoiceRef]:
        found = self.invoices.find_invoices(deal_id, reference=reference)
        return [named(ref, self.name) for ref in found]

    def create_invoice(self, draft: InvoiceDraft) -> InvoiceRef:
        return named(self.invoices.create_invoice(draft), self.name)

    def create_invoices(
        self,
        drafts: Sequence[InvoiceDraft],
        *,
        found: Mapping[str, Sequence[InvoiceRef]] | None = None,
    ) -> Mapping[str, InvoiceRef | ConnectorError]:
        # ``found`` is not needed: a QuickBooks invoice is made whole by one call, so
        # there is never a half-built one to resume (a finished one is adopted by the
        # engine from find_invoices before any retry).
        del found
        made = self.invoices.create_invoices(drafts)
        return {
            deal: named(outcome, self.name) if isinstance(outcome, InvoiceRef) else outcome
            for deal, outcome in made.items()
        }

    def fetch_invoice(self, external_id: str) -> InvoiceRef:
        return named(self.invoices.fetch_invoice(external_id), self.name)

    def void_invoice(self, external_id: str) -> InvoiceRef:
        return named(self.invoices.void_invoice(external_id), self.name)

    def send_invoice(self, external_id: str) -> InvoiceRef:
        return named(self.invoices.send_invoice(external_id), self.name)

    def take_discrepancies(self) -> list[Discrepancy]:
        """Total mismatches found by creates since the last call (the engine records them)."""
        return [named(d, self.name) for d in self.invoices.take_discrepancies()]

    # --- PaymentFeed -------------------------------------------------------------

    def read_invoice_money(self, external_ids: Sequence[str]) -> Mapping[str, InvoiceMoney]:
        read = self.feed.read_invoice_money(external_ids)
        return {key: named(money, self.name) for key, money in read.items()}

    def events_since(self, since: Cursor | None) -> Iterator[Checkpointed[PaymentEvent]]:
        for checkpointed in self.feed.events_since(since):
            yield Checkpointed(named(checkpointed.item, self.name), checkpointed.cursor)

    def resolve(self, notification: WebhookNotification) -> Sequence[PaymentEvent]:
        return [named(hint, self.name) for hint in self.feed.resolve(notification)]

    @property
    def last_cursor(self) -> Cursor | None:
        return self.feed.last_cursor
