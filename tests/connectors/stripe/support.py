"""Shared set-up: the Stripe sandbox in-process, the connector wired to it (sandbox
clock, no real sleeping), draft builders and a few admin helpers."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from billsync.connectors.stripe import StripeConnector, connect
from billsync.connectors.stripe.settings import StripeSettings
from billsync.core.canonical import Address, Customer, InvoiceDraft, InvoiceLine
from billsync.core.idempotency import invoice_key
from billsync.sandbox.generate import GenerateOptions, generate_seed
from tests.sandbox.harness import LoopThread, start_in_thread

SYSTEM = "billsync.sandbox.stripe.system:StripeSandbox"
CATALOGUE = generate_seed(GenerateOptions(deals=3))["stripe"]
PRODUCT = "prod_PLATSUB"
REVISION = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@dataclass
class ConnectorEnv:
    runner: LoopThread
    sleeps: list[float] = field(default_factory=list)

    @property
    def info(self) -> dict[str, Any]:
        return self.runner.info

    def now(self) -> datetime:
        return self.runner.sandbox.clock.now()

    def admin(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = requests.request(
            method, f"{self.info['admin_url']}/_sandbox/{path}", json=body, timeout=10
        )
        assert response.status_code == expect, response.text
        return response.json()

    def fresh(self) -> None:
        self.admin("POST", "reset")
        self.admin("POST", "faults", {})
        self.admin("POST", "webhooks", {"url": None})
        self.admin("POST", "seed", {"stripe": CATALOGUE})
        self.admin("DELETE", "calls")
        self.sleeps.clear()

    def calls(self) -> dict[str, int]:
        return dict(self.admin("GET", "calls")["systems"].get("stripe", {}))

    def clear_calls(self) -> None:
        self.admin("DELETE", "calls")

    def state(self) -> dict[str, Any]:
        return dict(self.admin("GET", "state")["stripe"])

    def advance(self, seconds: int) -> None:
        self.admin("POST", "clock", {"advance_s": seconds})

    def faults(self, **plan: Any) -> None:
        self.admin("POST", "faults", {"systems": ["stripe"], **plan} if plan else {})

    def settings(self, **overrides: Any) -> StripeSettings:
        section = self.runner.sandbox.systems["stripe"].config_section()
        # The sandbox runs with rate limits off; so does our limiter, so that `sleeps`
        # records only retry back-offs.
        return StripeSettings(**{**section, "rate_limit_per_s": 1000, **overrides})

    def connect(self, **overrides: Any) -> StripeConnector:
        return connect(self.settings(**overrides), sleep=self.sleeps.append, now=self.now)

    def invoices(self) -> list[dict[str, Any]]:
        return list(self.state()["invoices"])

    def pay(self, invoice_id: str, amount: int | None = None) -> Any:
        body = {} if amount is None else {"amount": amount}
        return self.admin("POST", f"stripe/invoices/{invoice_id}/pay", body)


@contextmanager
def stripe_connector_sandbox(tmp_path: Path) -> Iterator[ConnectorEnv]:
    with start_in_thread(
        tmp_path, systems={"stripe": SYSTEM}, system_options={"search_delay_s": 5.0}
    ) as runner:
        yield ConnectorEnv(runner)


def customer(
    account_id: str = "001ACME", email: str | None = "ap@acme.example", **extra: Any
) -> Customer:
    return Customer(
        account_id=account_id,
        name=extra.pop("name", "Acme GmbH"),
        email=email,
        billing_address=extra.pop(
            "billing_address",
            Address(line1="Hauptstr. 1", city="Berlin", postal_code="10115", country="DE"),
        ),
        **extra,
    )


Line = tuple[str, str, str | None]  # quantity, unit price, discount percent


def draft(
    lines: Sequence[Line] = (("1", "1000.00", None),),
    *,
    deal_id: str = "006DEAL1",
    currency: str = "USD",
    customer_: Customer | None = None,
    days_until_due: int | None = 30,
    revision: datetime = REVISION,
    product: str = PRODUCT,
    **extra: Any,
) -> InvoiceDraft:
    built = [
        InvoiceLine.priced(
            currency,
            source_line_id=f"00k{i}",
            item_ref=product,
            description=f"Line {i}",
            quantity=Decimal(q),
            unit_price=Decimal(p),
            discount_percent=Decimal(d) if d else None,
        )
        for i, (q, p, d) in enumerate(lines)
    ]
    return InvoiceDraft.with_total(
        deal_id=deal_id,
        deal_revision=revision,
        target="stripe",
        customer=customer_ or customer(),
        currency=currency,
        lines=tuple(built),
        days_until_due=days_until_due,
        idempotency_key=invoice_key(deal_id, "stripe", revision),
        **extra,
    )


def eight_lines() -> list[Line]:
    return [
        ("1", "12000.00", None),
        ("5", "480.00", None),
        ("1", "2500.00", "10"),
        ("2.5", "175.00", None),
        ("3", "99.90", "12.5"),
        ("4", "23.50", None),
        ("1", "899.99", None),
        ("0.333", "100.00", None),
    ]


def wait_until(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
