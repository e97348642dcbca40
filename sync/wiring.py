"""Builds the connectors a command needs from settings and mapping files.

Explicit wiring, one place: commands ask for a deal source, the targets or a whole
engine and get objects that speak the protocols of `connectors.base`; nothing else in
the engine imports a connector package.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from config.settings import Settings
from connectors.base import InvoiceTarget, PaymentFeed
from connectors.quickbooks import QuickBooksConnector
from connectors.salesforce.fields import DealFieldPaths, WriteBackFields
from connectors.salesforce.source import SalesforceDealSource
from connectors.stripe import connect as connect_stripe
from mappings.catalog import MappingOnlyCatalog, ProductMatch, ProductQuery, TargetCatalog
from mappings.loader import LoadedMapping, load_mappings
from mappings.plan import Planner
from sync.engine.cycle import Engine
from sync.engine.failures import RetryPolicy
from sync.idempotency import invoice_key
from sync.ledger import Ledger
from sync.ledger.credential_store import LedgerCredentialStore


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_holder() -> str:
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


def mapping_for(settings: Settings) -> LoadedMapping:
    return load_mappings(list(settings.sync.mapping_files))


def deal_source(settings: Settings, mapping: LoadedMapping) -> SalesforceDealSource:
    spec = mapping.spec
    return SalesforceDealSource(
        settings.salesforce,
        company_currency=settings.sync.company_currency,
        field_paths=DealFieldPaths(**spec.source.model_dump()),
        writeback_fields=WriteBackFields(**spec.writeback.model_dump()),
        start_from=settings.salesforce.start_from,
    )


@dataclass
class LazyCatalog:
    """A target's catalogue, loaded on first use: a run with nothing to invoice costs
    no catalogue calls (items, prices, terms)."""

    source: InvoiceTarget
    _loaded: TargetCatalog | None = field(default=None, init=False)

    @property
    def target(self) -> str:
        return self.source.target

    def _catalog(self) -> TargetCatalog:
        if self._loaded is None:
            self._loaded = self.source.catalog()
        return self._loaded

    def resolve_product(self, query: ProductQuery) -> ProductMatch | None:
        return self._catalog().resolve_product(query)

    def currency_problem(self, currency: str) -> str | None:
        return self._catalog().currency_problem(currency)

    def term_exists(self, name: str) -> bool:
        return self._catalog().term_exists(name)

    def tax_code_exists(self, code: str) -> bool:
        return self._catalog().tax_code_exists(code)


@dataclass
class Targets:
    targets: dict[str, InvoiceTarget] = field(default_factory=dict)
    feeds: dict[str, PaymentFeed] = field(default_factory=dict)


def targets_for(settings: Settings, ledger: Ledger, holder: str) -> Targets:
    built = Targets()
    if settings.quickbooks.enabled:
        qbo = QuickBooksConnector(settings.quickbooks, LedgerCredentialStore(ledger, holder))
        built.targets["quickbooks"] = qbo
        built.feeds["quickbooks"] = qbo
    if settings.stripe.enabled:
        stripe = connect_stripe(settings.stripe)
        built.targets["stripe"] = stripe.target
        built.feeds["stripe"] = stripe.feed
    return built


def target_catalogs(settings: Settings) -> dict[str, TargetCatalog]:
    """Catalogs for a dry run without a ledger: answered from the mapping alone
    (product refs are marked `unverified:` in the plan)."""
    catalogs: dict[str, TargetCatalog] = {}
    if settings.quickbooks.enabled:
        catalogs["quickbooks"] = MappingOnlyCatalog("quickbooks")
    if settings.stripe.enabled:
        catalogs["stripe"] = MappingOnlyCatalog("stripe")
    return catalogs


def planner_for(
    settings: Settings,
    mapping: LoadedMapping,
    catalogs: dict[str, TargetCatalog] | None = None,
) -> Planner:
    return Planner(
        mapping=mapping,
        catalogs=catalogs if catalogs is not None else target_catalogs(settings),
        default_target=settings.sync.default_target,
        idempotency_key=invoice_key,
    )


def engine_for(settings: Settings, ledger: Ledger, *, holder: str | None = None) -> Engine:
    holder = holder or new_holder()
    mapping = mapping_for(settings)
    built = targets_for(settings, ledger, holder)
    catalogs: dict[str, TargetCatalog] = {
        name: LazyCatalog(target) for name, target in built.targets.items()
    }
    retry = settings.retry
    return Engine(
        ledger=ledger,
        source=deal_source(settings, mapping),
        targets=built.targets,
        feeds=built.feeds,
        planner=planner_for(settings, mapping, catalogs),
        mapping=mapping,
        policy=RetryPolicy(retry.base_seconds, retry.cap_seconds, retry.max_attempts),
        now=utc_now,
        holder=holder,
        lease_ttl=timedelta(seconds=settings.sync.lease_ttl_seconds),
    )
