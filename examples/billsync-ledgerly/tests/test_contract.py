"""billsync's shared contract suite (`billsync.testing`) against the fake Ledgerly API,
through the installed entry point, with the settings read exactly as billsync reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from conftest import MemoryCredentials
from fake_ledgerly import API_KEY, WEBHOOK_SECRET, FakeLedgerly

from billsync.config.loader import load_settings
from billsync.core.canonical import Customer, InvoiceDraft, InvoiceLine, InvoiceRef
from billsync.core.idempotency import invoice_key
from billsync.core.plugins import BuildContext, ConnectorParts
from billsync.testing import InvoiceTargetContract, SignedRequest, build_connector

REVISION = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@dataclass
class LedgerlyHarness:
    fake: FakeLedgerly
    name: str = "ledgerly"
    """The connection under test: what every part must name itself (the contract
    checks it); ``kind`` is the connector it is a connection of."""
    kind: str = "ledgerly"
    missing_invoice_id: str = "inv_99999"
    sleeps: list[float] = field(default_factory=list)
    credentials: MemoryCredentials = field(default_factory=MemoryCredentials)

    def _build(self, **settings: str) -> ConnectorParts:
        values = {
            "enabled": "true",
            "api_key": API_KEY,
            "base_url": self.fake.url,
            "webhook_secrets": json.dumps([WEBHOOK_SECRET]),
            "retry_attempts": "2",
            **settings,
        }
        environ = {f"BILLSYNC_LEDGERLY__{key.upper()}": value for key, value in values.items()}
        section = load_settings(None, environ=environ).connector(self.kind)
        context = BuildContext(
            holder="contract",
            credentials=self.credentials,
            sleep=self.sleeps.append,
            connection=self.name,
        )
        return build_connector(self.kind, section, context)

    def build(self) -> ConnectorParts:
        return self._build()

    def build_with_bad_credentials(self) -> ConnectorParts:
        return self._build(api_key="ly_test_" + "x" * 24)

    def build_with_wrong_webhook_secret(self) -> ConnectorParts:
        return self._build(webhook_secrets=json.dumps(["lywh_" + "w" * 24]))

    def customer(self) -> Customer:
        return Customer(
            account_id="001CT0000000001AAA",
            name="Contract Test Ltd",
            email="ap@contract-test.example",
            currency="USD",
        )

    def draft(self, deal_id: str, customer: Customer) -> InvoiceDraft:
        line = InvoiceLine.priced(
            "USD",
            item_ref="PLAT-SUB",
            description="Platform subscription (annual)",
            quantity=Decimal(2),
            unit_price=Decimal("1250.00"),
            discount_percent=Decimal("12.5"),
        )
        return InvoiceDraft.with_total(
            deal_id=deal_id,
            deal_revision=REVISION,
            target=self.name,
            customer=customer,
            currency="USD",
            lines=(line,),
            terms="Net 30",
            idempotency_key=invoice_key(deal_id, self.name, REVISION),
        )

    def invoices_in_backend(self, deal_id: str) -> int:
        return len(self.fake.invoices_with_reference(deal_id))

    def pay_in_full(self, invoice: InvoiceRef) -> None:
        self.fake.pay(invoice.external_id)

    def signed_webhooks(self) -> list[SignedRequest]:
        return [SignedRequest(body, dict(headers)) for body, headers in self.fake.webhooks]

    def inject_server_errors(self) -> None:
        self.fake.fault = 503

    def clear_faults(self) -> None:
        self.fake.fault = None


class TestLedgerly(InvoiceTargetContract):
    @pytest.fixture
    def harness(self, fake: FakeLedgerly) -> LedgerlyHarness:
        return LedgerlyHarness(fake)


class TestLedgerlyAsASecondConnection(InvoiceTargetContract):
    """The same contract for a second Ledgerly account (``connections.ledgerly_uk``):
    every part names itself by the connection, never by the connector's kind."""

    @pytest.fixture
    def harness(self, fake: FakeLedgerly) -> LedgerlyHarness:
        return LedgerlyHarness(fake, name="ledgerly_uk")
