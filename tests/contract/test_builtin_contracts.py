"""The shared contract suite (`billsync.testing`, as a plug-in runs it) for the three
built-in connectors, against the in-process sandbox (real systems, real SDKs), plus
plug-in discovery and wiring.

Every connector is built through its `billsync.connectors` entry point, exactly as
`billsync.sync.wiring` builds it, with two retries and a recording ``sleep`` so that retry
back-offs cost nothing. One sandbox serves the module; each test resets it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from billsync.config.loader import load_settings
from billsync.config.settings import Settings
from billsync.connectors.stripe.convert import DEAL_KEY
from billsync.core import plugins
from billsync.core.canonical import Address, Customer, InvoiceDraft, InvoiceLine, InvoiceRef
from billsync.core.idempotency import invoice_key
from billsync.core.plugins import BuildContext, ConnectorParts, ConnectorPluginError
from billsync.core.problems import ConfigError
from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sync import wiring
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from billsync.sync.ledger.credential_store import LedgerCredentialStore
from billsync.testing import (
    DealSourceContract,
    InvoiceTargetContract,
    SignedRequest,
    build_connector,
)
from tests.sandbox.harness import LoopThread, start_in_thread

SYSTEMS = {
    "salesforce": "billsync.sandbox.salesforce.system:SalesforceSandbox",
    "quickbooks": "billsync.sandbox.quickbooks.system:QuickBooksSandbox",
    "stripe": "billsync.sandbox.stripe.system:StripeSandbox",
}
CATALOGUE = generate_seed(GenerateOptions(deals=3, random_seed=1))
REVISION = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
RETRIES = 2  # one back-off per failing call: bounded, and cheap with a recording sleep


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    with start_in_thread(tmp_path_factory.mktemp("contract"), systems=SYSTEMS) as runner:
        yield Backend(runner)


@dataclass
class Backend:
    """The sandbox's admin API and the configuration it wrote for billsync."""

    runner: LoopThread

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(
            method,
            f"{self.runner.info['admin_url']}/_sandbox/{path}",
            data=None if body is None else jsonutil.dumps(body),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code < 300, f"{method} {path}: {response.text}"
        return jsonutil.loads(response.content)

    def fresh(self, **seed: Any) -> None:
        self.admin("POST", "faults", {})
        self.admin("POST", "reset")
        self.admin("POST", "webhooks", {"url": None, "duplicates": 1})
        if seed:
            self.admin("POST", "seed", seed)

    def settings(self, section: str, **changes: Any) -> Settings:
        """The sandbox's billsync.yaml as `billsync run` would load it, with ``changes``
        to one section."""
        path = self.runner.sandbox.options.config_out
        assert path is not None
        loaded = load_settings(path, environ={})
        changed = getattr(loaded, section).model_copy(update=changes)
        return loaded.model_copy(update={section: changed})

    def server_errors(self, system: str) -> None:
        self.admin("POST", "faults", {"systems": [system], "error_rate_5xx": 1.0})

    def signed(self, provider: str) -> list[SignedRequest]:
        deliveries = [d for d in self.runner.sandbox.outbox.log if d.provider == provider]
        return [SignedRequest(d.body, dict(d.sign(d.body))) for d in deliveries]


# --- Salesforce: the deal source ---------------------------------------------------------


@dataclass
class SalesforceHarness:
    backend: Backend
    name: str = "salesforce"
    sleeps: list[float] = field(default_factory=list)
    built: list[ConnectorParts] = field(default_factory=list)

    def _build(self, **changes: Any) -> ConnectorParts:
        settings = self.backend.settings("salesforce", retry_attempts=RETRIES, **changes)
        context = BuildContext(holder="contract-tests", sleep=self.sleeps.append)
        parts = build_connector(self.name, settings.connector(self.name), context)
        self.built.append(parts)
        return parts

    def build(self) -> ConnectorParts:
        return self._build()

    def build_with_bad_credentials(self) -> ConnectorParts:
        return self._build(client_secret=SecretStr("not-the-consumer-secret"))

    def seed_deals(self, count: int) -> list[str]:
        seed = generate_seed(GenerateOptions(deals=count * 3, random_seed=count))["salesforce"]
        won = [d for d in seed["Opportunity"] if d["StageName"] == "Closed Won"][:count]
        assert len(won) == count, "the generated seed has too few closed-won deals"
        self.backend.admin("POST", "seed", {"salesforce": {**seed, "Opportunity": won}})
        return [str(d["Id"]) for d in won]

    def change_deal(self, deal_id: str) -> None:
        time.sleep(0.005)  # SystemModstamp has millisecond precision
        self.backend.admin(
            "PATCH", f"salesforce/Opportunity/{deal_id}", {"Name": f"Changed {deal_id}"}
        )

    def written_invoice_number(self, deal_id: str) -> str | None:
        record = self.backend.admin("GET", f"salesforce/Opportunity/{deal_id}")
        value = record["Billing_Invoice_Number__c"]
        return None if value is None else str(value)

    def inject_server_errors(self) -> None:
        self.backend.server_errors("salesforce")

    def clear_faults(self) -> None:
        self.backend.admin("POST", "faults", {})

    def close(self) -> None:
        for parts in self.built:  # open keep-alive connections slow the sandbox's shutdown
            if parts.source is not None:
                parts.source.close()


class TestSalesforceSource(DealSourceContract):
    @pytest.fixture
    def harness(self, sandbox: Backend) -> Iterator[SalesforceHarness]:
        sandbox.fresh()
        harness = SalesforceHarness(sandbox)
        yield harness
        harness.close()


# --- QuickBooks and Stripe: targets, feeds, webhook verifiers ----------------------------


def buyer(currency: str | None = "USD") -> Customer:
    return Customer(
        account_id="001CT0000000001AAA",
        name="Contract Test GmbH",
        email="ap@contract-test.example",
        currency=currency,
        billing_address=Address(line1="Hauptstr. 1", city="Berlin", country="DE"),
    )


def one_line(item_ref: str) -> tuple[InvoiceLine, ...]:
    return (
        InvoiceLine.priced(
            "USD",
            source_line_id="00kCT0000000001AAA",
            item_ref=item_ref,
            description="Platform subscription",
            quantity=Decimal("2"),
            unit_price=Decimal("1250.00"),
            discount_percent=Decimal("10"),
        ),
    )


@dataclass
class QuickBooksHarness:
    backend: Backend
    tmp: Path
    name: str = "quickbooks"
    missing_invoice_id: str = "99999999"
    sleeps: list[float] = field(default_factory=list)
    _ledgers: dict[str, Ledger] = field(default_factory=dict)
    _processes: Iterator[int] = field(default_factory=itertools.count)

    def ledger(self, name: str = "ledger") -> Ledger:
        """One ledger shared by the test's "processes" (as workers share one)."""
        if name not in self._ledgers:
            engine = create_ledger_engine(f"sqlite:///{self.tmp / name}.db")
            upgrade_to_head(engine)
            self._ledgers[name] = Ledger(engine)
        return self._ledgers[name]

    def _build(self, ledger: str = "ledger", **changes: Any) -> ConnectorParts:
        settings = self.backend.settings("quickbooks", retry_attempts=RETRIES, **changes)
        holder = f"contract-{next(self._processes)}"
        context = BuildContext(
            holder=holder,
            credentials=LedgerCredentialStore(self.ledger(ledger), holder),
            sleep=self.sleeps.append,
        )
        return build_connector(self.name, settings.connector(self.name), context)

    def build(self) -> ConnectorParts:
        return self._build()

    def build_with_bad_credentials(self) -> ConnectorParts:
        # A ledger with no token: the (revoked) bootstrap refresh token is all there is.
        return self._build("unconnected", refresh_token=SecretStr("AB11-revoked-refresh-token"))

    def build_with_wrong_webhook_secret(self) -> ConnectorParts:
        return self._build(verifier_token=SecretStr("not-the-verifier-token"))

    def customer(self) -> Customer:
        return buyer("USD")

    def draft(self, deal_id: str, customer: Customer) -> InvoiceDraft:
        items = self.backend.admin("GET", "quickbooks/state")["Item"]
        item = next(str(i["Id"]) for i in items if i.get("Sku") == "PLAT-SUB")
        return InvoiceDraft.with_total(
            deal_id=deal_id,
            deal_revision=REVISION,
            target=self.name,
            customer=customer,
            currency="USD",
            lines=one_line(item),
            doc_number=deal_id[:21],  # the default mapping's DocNumber
            memo=f"Deal {deal_id}",
            idempotency_key=invoice_key(deal_id, self.name, REVISION),
        )

    def invoices_in_backend(self, deal_id: str) -> int:
        invoices = self.backend.admin("GET", "quickbooks/state")["Invoice"]
        return sum(1 for i in invoices if i.get("DocNumber") == deal_id[:21])

    def pay_in_full(self, invoice: InvoiceRef) -> None:
        body = {"invoice_id": invoice.external_id, "amount": str(invoice.total)}
        self.backend.admin("POST", "quickbooks/payments", body)

    def signed_webhooks(self) -> list[SignedRequest]:
        return self.backend.signed("quickbooks")

    def inject_server_errors(self) -> None:
        self.backend.server_errors("quickbooks")

    def clear_faults(self) -> None:
        self.backend.admin("POST", "faults", {})

    def close(self) -> None:
        for ledger in self._ledgers.values():
            ledger.engine.dispose()


class TestQuickBooksTarget(InvoiceTargetContract):
    @pytest.fixture
    def harness(self, sandbox: Backend, tmp_path: Path) -> Iterator[QuickBooksHarness]:
        sandbox.fresh(quickbooks=CATALOGUE["quickbooks"])
        sandbox.admin("POST", "quickbooks/oauth/config", {"refresh_grace_s": 60})
        sandbox.admin("POST", "quickbooks/webhook_format", {"format": "legacy"})
        harness = QuickBooksHarness(sandbox, tmp_path)
        yield harness
        harness.close()


@dataclass
class StripeHarness:
    backend: Backend
    name: str = "stripe"
    missing_invoice_id: str = "in_1ContractMissing000000"
    sleeps: list[float] = field(default_factory=list)

    def _build(self, **changes: Any) -> ConnectorParts:
        # The sandbox runs without rate limits; so does our limiter (1,000/s), so that
        # `sleeps` holds only retry back-offs.
        settings = self.backend.settings(
            "stripe", retry_attempts=RETRIES, rate_limit_per_s=1000, **changes
        )
        context = BuildContext(holder="contract-tests", sleep=self.sleeps.append)
        return build_connector(self.name, settings.connector(self.name), context)

    def build(self) -> ConnectorParts:
        return self._build()

    def build_with_bad_credentials(self) -> ConnectorParts:
        return self._build(api_key=SecretStr("sk_test_notTheSandboxKey000000000000"))

    def build_with_wrong_webhook_secret(self) -> ConnectorParts:
        return self._build(webhook_secrets=[SecretStr("whsec_notTheEndpointSecret000000")])

    def customer(self) -> Customer:
        return buyer(None)

    def draft(self, deal_id: str, customer: Customer) -> InvoiceDraft:
        return InvoiceDraft.with_total(
            deal_id=deal_id,
            deal_revision=REVISION,
            target=self.name,
            customer=customer,
            currency="USD",
            lines=one_line("prod_PLATSUB"),
            days_until_due=30,
            idempotency_key=invoice_key(deal_id, self.name, REVISION),
        )

    def invoices_in_backend(self, deal_id: str) -> int:
        invoices = self.backend.admin("GET", "state")["stripe"]["invoices"]
        return sum(1 for i in invoices if (i.get("metadata") or {}).get(DEAL_KEY) == deal_id)

    def pay_in_full(self, invoice: InvoiceRef) -> None:
        self.backend.admin("POST", f"stripe/invoices/{invoice.external_id}/pay", {})

    def signed_webhooks(self) -> list[SignedRequest]:
        return self.backend.signed("stripe")

    def inject_server_errors(self) -> None:
        self.backend.server_errors("stripe")

    def clear_faults(self) -> None:
        self.backend.admin("POST", "faults", {})


class TestStripeTarget(InvoiceTargetContract):
    @pytest.fixture
    def harness(self, sandbox: Backend) -> StripeHarness:
        sandbox.fresh(stripe=CATALOGUE["stripe"])
        return StripeHarness(sandbox)


# --- discovery and wiring ----------------------------------------------------------------


def install_plugin(root: Path, monkeypatch: pytest.MonkeyPatch, *, name: str, target: str) -> None:
    """A third-party package as pip would leave it: a dist-info with an entry point."""
    dist = root / f"billsync_{name}-0.3.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: billsync-{name}\nVersion: 0.3.1\n"
    )
    (dist / "entry_points.txt").write_text(f"[billsync.connectors]\n{name} = {target}\n")
    monkeypatch.syspath_prepend(str(root))


PLUGIN_MODULE = """
from billsync.core.plugins import ConnectorParts, ConnectorSpec
from billsync.core.settings import ConnectorSection


class Target:
    target = "ledgerbook"

    def catalog(self):
        raise NotImplementedError


class LedgerbookSettings(ConnectorSection):
    book: str = "main"


def build(section, context):
    assert isinstance(section, LedgerbookSettings)
    return ConnectorParts(target=Target())


def build_source_only(section, context):
    return ConnectorParts()


LEDGERBOOK = ConnectorSpec(
    name="ledgerbook", label="Ledgerbook", settings=LedgerbookSettings, build=build
)
EMPTY = ConnectorSpec(
    name="empty", label="Empty", settings=LedgerbookSettings, build=build_source_only
)
"""


def test_the_three_built_ins_are_entry_points() -> None:
    found = plugins.installed()
    for name in ("salesforce", "quickbooks", "stripe"):
        [entry] = found[name]
        assert entry.value == f"billsync.connectors.{name}.plugin:SPEC"
        assert entry.dist is not None and entry.dist.name == "billsync"
    specs = plugins.discover(["salesforce", "quickbooks", "stripe"], config_key="sync.targets")
    assert list(specs) == ["salesforce", "quickbooks", "stripe"]
    assert all(name == spec.name for name, spec in specs.items())


def test_a_missing_connector_names_the_package_to_install() -> None:
    with pytest.raises(ConnectorPluginError) as caught:
        plugins.discover(["stripe", "xero", "hubspot"], config_key="sync.targets")
    xero, hubspot = [str(p) for p in caught.value.problems]
    assert xero.startswith(
        "billsync.connectors: sync.targets: no connector 'xero' is installed: pip install "
        "billsync-xero or remove it from sync.targets (installed connectors: "
    )
    assert "quickbooks, salesforce, stripe" in xero
    assert "'hubspot' is installed: pip install billsync-hubspot or remove it" in hubspot
    assert isinstance(caught.value, ConfigError)  # `billsync` prints it and exits 2


def test_a_broken_plugin_names_its_package_and_the_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path, monkeypatch, name="xero", target="billsync_xero.connector:build")
    with pytest.raises(ConnectorPluginError) as caught:
        plugins.discover(["xero"], config_key="sync.targets")
    [line] = [str(p) for p in caught.value.problems]
    assert line == (
        "billsync.connectors: sync.targets: connector 'xero' from package billsync-xero "
        "0.3.1 failed to load (billsync_xero.connector:build): ModuleNotFoundError: No module "
        "named 'billsync_xero'"
    )
    assert "Traceback" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_a_plugin_that_is_not_a_spec_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(
        tmp_path, monkeypatch, name="odd", target="billsync.core.plugins:ENTRY_POINT_GROUP"
    )
    with pytest.raises(ConnectorPluginError, match=r"not a billsync\.core\.plugins\.ConnectorSpec"):
        plugins.discover(["odd"], config_key="sync.targets")


def migrated_ledger(tmp_path: Path) -> Ledger:
    """Building targets pins their connections in the ledger, so it must exist."""
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'l.db'}")
    upgrade_to_head(engine)
    return Ledger(engine)


def test_wiring_builds_a_third_party_target_named_in_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ct_ledgerbook.py").write_text(PLUGIN_MODULE)
    install_plugin(tmp_path, monkeypatch, name="ledgerbook", target="ct_ledgerbook:LEDGERBOOK")
    settings = load_settings(None, environ={"BILLSYNC_SYNC__TARGETS": '["ledgerbook"]'})
    ledger = migrated_ledger(tmp_path)
    built = wiring.targets_for(settings, ledger, "test-holder")
    assert list(built.targets) == ["ledgerbook"] and built.feeds == {} and built.webhooks == {}
    assert list(wiring.target_catalogs(settings)) == ["ledgerbook"]


def test_wiring_refuses_connectors_unfit_for_their_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ct_ledgerbook.py").write_text(PLUGIN_MODULE)
    install_plugin(tmp_path, monkeypatch, name="empty", target="ct_ledgerbook:EMPTY")
    settings = load_settings(None, environ={"BILLSYNC_SYNC__TARGETS": '["empty"]'})
    ledger = migrated_ledger(tmp_path)
    with pytest.raises(ConnectorPluginError, match="'empty' is not an invoice target"):
        wiring.targets_for(settings, ledger, "test-holder")
    as_source = load_settings(None, environ={"BILLSYNC_SYNC__SOURCE": "empty"})
    with pytest.raises(ConnectorPluginError, match="'empty' provides no deal source"):
        wiring.deal_source(as_source, wiring.mapping_for(as_source))
    missing = load_settings(None, environ={"BILLSYNC_SYNC__SOURCE": "hubspot"})
    with pytest.raises(ConnectorPluginError, match=r"or set sync\.source to an installed"):
        wiring.deal_source(missing, wiring.mapping_for(missing))


def test_wiring_defaults_to_the_enabled_built_ins(sandbox: Backend, tmp_path: Path) -> None:
    settings = sandbox.settings("stripe")  # quickbooks and stripe enabled, targets unset
    assert settings.sync.targets is None
    ledger = migrated_ledger(tmp_path)
    built = wiring.targets_for(settings, ledger, "test-holder")
    assert (
        list(built.targets)
        == list(built.feeds)
        == list(built.webhooks)
        == [
            "quickbooks",
            "stripe",
        ]
    )
    only_stripe = settings.model_copy(
        update={"sync": settings.sync.model_copy(update={"targets": ["stripe"]})}
    )
    assert list(wiring.targets_for(only_stripe, ledger, "test-holder").targets) == ["stripe"]
    disabled = sandbox.settings("stripe", enabled=False)
    assert wiring.target_names(disabled) == ["quickbooks"]
    named = disabled.model_copy(
        update={"sync": disabled.sync.model_copy(update={"targets": ["stripe"]})}
    )
    with pytest.raises(ConnectorPluginError) as caught:
        wiring.targets_for(named, ledger, "test-holder")
    assert str(caught.value).startswith("billsync.connectors: stripe.enabled: ")
    with wiring.deal_source(settings, wiring.mapping_for(settings)) as source:
        assert source.system == "salesforce"
