"""QuickBooks connector fixtures: one sandbox per session, a fresh company and ledger
per test, fake time so throttling and lease waits cost nothing.

No test sets OAUTHLIB_INSECURE_TRANSPORT: the connector must reach the http sandbox
without it (its session is not an OAuth2Session).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billsync.connectors.quickbooks import QuickBooksConnector
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.core.canonical import Address, Customer, InvoiceDraft, InvoiceLine
from billsync.core.idempotency import invoice_key
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from billsync.sync.ledger.credential_store import LedgerCredentialStore
from tests.sandbox.harness import LoopThread, start_in_thread

SYSTEM = "billsync.sandbox.quickbooks.system:QuickBooksSandbox"
REVISION = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
ITEMS = [
    {
        "Name": "Platform subscription",
        "Sku": "PLAT-SUB",
        "Type": "Service",
        "UnitPrice": Decimal("1200.00"),
        "IncomeAccountRef": {"value": "1"},
    },
    {
        "Name": "Additional seat",
        "Sku": "SEAT",
        "Type": "Service",
        "UnitPrice": Decimal("48.00"),
        "IncomeAccountRef": {"value": "1"},
    },
    {"Name": "Training", "Type": "Service", "IncomeAccountRef": {"value": "1"}},
    {
        "Name": "Legacy widget",
        "Sku": "OLD",
        "Type": "Service",
        "Active": False,
        "IncomeAccountRef": {"value": "1"},
    },
]


class FakeTime:
    """Wall clock and monotonic clock that only move when code sleeps."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC)
        self.offset = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += max(seconds, 0.0)


@dataclass
class Qbo:
    runner: LoopThread
    tmp: Path
    time: FakeTime = field(default_factory=FakeTime)
    _ledger: Ledger | None = None

    @property
    def info(self) -> dict[str, Any]:
        return self.runner.info

    @property
    def realm_id(self) -> str:
        return str(self.info["quickbooks_realm_id"])

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return self.runner.admin(method, path, body)

    def state(self) -> dict[str, Any]:
        return dict(self.admin("GET", "quickbooks/state"))

    def calls(self) -> dict[str, int]:
        return dict(self.admin("GET", "calls")["systems"].get("quickbooks", {}))

    def reset_calls(self) -> None:
        self.admin("DELETE", "calls")

    def settings(self, **overrides: Any) -> QuickBooksSettings:
        section = dict(self.runner.sandbox.systems["quickbooks"].config_section())
        section.update(overrides)
        return QuickBooksSettings(**section)

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            engine = create_ledger_engine(f"sqlite:///{self.tmp / 'ledger.db'}")
            upgrade_to_head(engine)
            self._ledger = Ledger(engine)
        return self._ledger

    def store(self, holder: str = "test-process") -> LedgerCredentialStore:
        return LedgerCredentialStore(self.ledger, holder)

    def connector(self, holder: str = "test-process", **overrides: Any) -> QuickBooksConnector:
        return QuickBooksConnector(
            self.settings(**overrides),
            self.store(holder),
            clock=self.time.now,
            sleep=self.time.sleep,
            monotonic=self.time.monotonic,
        )

    def seed(self, **entities: Any) -> None:
        self.admin("POST", "seed", {"quickbooks": entities})

    def item_id(self, sku_or_name: str) -> str:
        for item in self.state()["Item"]:
            if sku_or_name in (item.get("Sku"), item.get("Name")):
                return str(item["Id"])
        raise KeyError(sku_or_name)

    def invoices(self) -> list[dict[str, Any]]:
        return list(self.state()["Invoice"])


@pytest.fixture(scope="session")
def qbo_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopThread]:
    assert "OAUTHLIB_INSECURE_TRANSPORT" not in os.environ
    with start_in_thread(tmp_path_factory.mktemp("qbo"), systems={"quickbooks": SYSTEM}) as runner:
        yield runner


@pytest.fixture
def qbo(qbo_runner: LoopThread, tmp_path: Path) -> Qbo:
    env = Qbo(qbo_runner, tmp_path)
    env.admin("POST", "faults", {})
    env.admin("POST", "reset")
    env.admin("POST", "quickbooks/oauth/config", {"refresh_grace_s": 60})
    env.admin("POST", "quickbooks/webhook_format", {"format": "legacy"})
    env.admin("POST", "quickbooks/preferences", {"multicurrency": True, "home_currency": "USD"})
    env.admin("POST", "webhooks", {"url": None, "duplicates": 1})
    env.seed(Item=ITEMS)
    return env


def customer(n: int = 1, **overrides: Any) -> Customer:
    fields: dict[str, Any] = {
        "account_id": f"001000000000{n:03d}AAA",
        "name": f"Customer {n}",
        "email": f"ap{n}@customer.example",
        "currency": "USD",
        "account_number": f"AC-{n:05d}",
        "billing_address": Address(line1=f"{n} Market St", city="Austin", country="US"),
    }
    fields.update(overrides)
    return Customer(**fields)


def line(item_ref: str, quantity: str = "1", price: str = "100.00", **fields: Any) -> InvoiceLine:
    return InvoiceLine.priced(
        "USD",
        item_ref=item_ref,
        quantity=Decimal(quantity),
        unit_price=Decimal(price),
        **fields,
    )


def draft(
    deal: str, buyer: Customer, lines: tuple[InvoiceLine, ...], **overrides: Any
) -> InvoiceDraft:
    revision = overrides.pop("deal_revision", REVISION)
    fields: dict[str, Any] = {
        "deal_id": deal,
        "deal_revision": revision,
        "target": "quickbooks",
        "customer": buyer,
        "currency": "USD",
        "lines": lines,
        "doc_number": deal[:21],
        "memo": f"Deal {deal}",
        "terms": "Net 30",
        "issue_date": date(2026, 11, 2),
        "idempotency_key": invoice_key(deal, "quickbooks", revision),
    }
    fields.update(overrides)
    return InvoiceDraft.with_total(**fields)
