"""Builds the connectors a command needs from settings and mapping files.

Explicit wiring, one place: commands ask for a deal source, the targets or a whole
engine and get objects that speak the protocols of `billsync.core.protocols`. Connectors are
found by name through the `billsync.connectors` entry points (`billsync.core.plugins`):
``sync.source`` names the deal source, ``sync.targets`` the invoice targets; no module
of the engine imports a connector package.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from billsync.config.settings import Connection, Settings
from billsync.core import plugins
from billsync.core.catalog import MappingOnlyCatalog, ProductMatch, ProductQuery, TargetCatalog
from billsync.core.idempotency import invoice_key
from billsync.core.plugins import BuildContext
from billsync.core.problems import ConfigError, ConfigProblem
from billsync.core.protocols import (
    CredentialStore,
    DealSource,
    InvoiceTarget,
    PaymentFeed,
    WebhookVerifier,
)
from billsync.core.settings import SourceSection
from billsync.core.target_mapping import UniqueReference
from billsync.mappings.loader import LoadedMapping, load_mappings
from billsync.mappings.plan import Planner
from billsync.mappings.targets import MappingTargets
from billsync.sync.engine.cycle import Engine
from billsync.sync.engine.failures import RetryPolicy
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.connections import ConnectionPin, PinConflict
from billsync.sync.ledger.credential_store import LedgerCredentialStore


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_holder() -> str:
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


def mapping_for(settings: Settings, files: list[Path] | None = None) -> LoadedMapping:
    """The configured mapping files, checked against the installed connectors and the
    configured connections (the names its target sections and routing may use), and
    against what each target connection needs of the mapping: one that relies on the
    invoice reference being unique per deal (`TargetMapping.unique_reference`: one
    that skips its look-up before creating) needs a mapping that proves it. ``files``
    replaces ``sync.mapping_files`` (`billsync mappings check FILE… --config`)."""
    connections = settings.every_connection()
    demands: list[UniqueReference] = []
    for name in target_names(settings):
        connection = connections.get(name)
        rules = connection.spec.mapping if connection is not None else None
        if connection is None or rules is None or not connection.section.enabled:
            continue
        demand = rules.unique_reference(connection.section)
        if demand is not None:
            where = BuildContext(holder="mapping", connection=name)
            demands.append(replace(demand, setting=where.setting(connection.kind, demand.setting)))
    return load_mappings(
        list(settings.sync.mapping_files if files is None else files),
        targets=MappingTargets(settings.connector_specs, settings.connection_kinds()),
        unique_reference=demands,
    )


def target_names(settings: Settings) -> list[str]:
    """The target connections: ``sync.targets`` in order without repeats; unset: every
    enabled connection that is not a deal source (sources declare a `SourceSection`)."""
    if settings.sync.targets is not None:
        return list(dict.fromkeys(settings.sync.targets))
    return [
        name
        for name, connection in settings.every_connection().items()
        if connection.section.enabled
        and name != settings.sync.source
        and not isinstance(connection.section, SourceSection)
    ]


def connection_specs(
    settings: Settings, names: list[str], *, config_key: str
) -> dict[str, Connection]:
    """The named connections, each with its connector's spec; every name that is no
    configured connection is reported at once, naming what is configured."""
    known = settings.every_connection()
    missing = [name for name in names if name not in known]
    if missing:
        configured = ", ".join(known) or "none"
        raise plugins.ConnectorPluginError(
            [
                ConfigProblem(
                    plugins.ENTRY_POINT_GROUP,
                    config_key,
                    f"no connection '{name}' is configured: declare it under connections: "
                    f"with its kind, or install the connector billsync-{name} "
                    f"(configured connections: {configured})",
                )
                for name in missing
            ]
        )
    return {name: known[name] for name in names}


def pin_connections(ledger: Ledger, connections: Mapping[str, Connection]) -> None:
    """Record what each connection name is in the ledger, or stop start-up when the
    configuration points a name the ledger knows at another kind or account: its rows
    (invoices, payments, customer links, cursors) belong to the account recorded."""
    pins = {
        name: ConnectionPin(c.kind, c.spec.account(c.section) if c.spec.account else None)
        for name, c in connections.items()
    }
    conflicts = ledger.pin_connections(pins)
    if conflicts:
        raise ConfigError([_pin_problem(connections[c.name], c) for c in conflicts])


def _pin_problem(connection: Connection, conflict: PinConflict) -> ConfigProblem:
    def said(pin: ConnectionPin) -> str:
        account = f" for account {pin.account}" if pin.account else ""
        return f"a {pin.kind} connection{account}"

    key = (
        connection.name if connection.name == connection.kind else f"connections.{connection.name}"
    )
    return ConfigProblem(
        "ledger",
        key,
        f"this ledger knows '{conflict.name}' as {said(conflict.recorded)}, and its "
        f"invoices, payments and customer links belong there; the configuration makes it "
        f"{said(conflict.configured)}. Restore the setting, or declare the other company "
        "as a new connection under another name",
    )


def build_context(
    settings: Settings,
    holder: str,
    *,
    credentials: CredentialStore | None = None,
    mapping: LoadedMapping | None = None,
    connection: Connection | None = None,
) -> BuildContext:
    peers = {
        name: other.section
        for name, other in settings.every_connection().items()
        if connection is not None and other.kind == connection.kind and name != connection.name
    }
    return BuildContext(
        holder=holder,
        credentials=credentials,
        mapping=mapping,
        company_currency=settings.sync.company_currency,
        start_from=settings.sync.start_from,
        max_body_bytes=settings.server.max_body_bytes,
        connection=connection.name if connection else None,
        peers=peers,
    )


def deal_source(
    settings: Settings,
    mapping: LoadedMapping,
    *,
    holder: str | None = None,
    credentials: CredentialStore | None = None,
) -> DealSource:
    name = settings.sync.source
    connection = settings.every_connection().get(name)
    if connection is None:
        plugins.discover(
            [name], config_key="sync.source", fix="set sync.source to an installed deal source"
        )
        raise plugins.plugin_problem("sync.source", f"no connection '{name}' is configured")
    context = build_context(
        settings,
        holder or new_holder(),
        credentials=credentials,
        mapping=mapping,
        connection=connection,
    )
    source = connection.spec.build(connection.section, context).source
    if source is None:
        raise plugins.plugin_problem(
            "sync.source", f"connection '{name}' provides no deal source; name one that does"
        )
    return source


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
    webhooks: dict[str, WebhookVerifier] = field(default_factory=dict)


def targets_for(
    settings: Settings, ledger: Ledger, holder: str, *, mapping: LoadedMapping | None = None
) -> Targets:
    """Every target connection (`target_names`), with its payment feed and webhook
    verifier when it has them, keyed by connection name. Each connection is built with
    its own name and its same-kind peers (`BuildContext`)."""
    connections = connection_specs(settings, target_names(settings), config_key="sync.targets")
    pin_connections(ledger, connections)
    credentials = LedgerCredentialStore(ledger, holder)
    built = Targets()
    for name, connection in connections.items():
        context = build_context(
            settings, holder, credentials=credentials, mapping=mapping, connection=connection
        )
        parts = connection.spec.build(connection.section, context)
        if parts.target is None:
            provides = ", ".join(parts.provides()) or "nothing"
            raise plugins.plugin_problem(
                "sync.targets",
                f"connection '{name}' is not an invoice target (it provides: {provides}); "
                "remove it from sync.targets",
            )
        built.targets[name] = parts.target
        if parts.feed is not None:
            built.feeds[name] = parts.feed
        if parts.webhooks is not None:
            built.webhooks[name] = parts.webhooks
    return built


def target_catalogs(settings: Settings) -> dict[str, TargetCatalog]:
    """Catalogs for a dry run without a ledger: answered from the mapping alone
    (product refs are marked `unverified:` in the plan). The targets' plug-ins are
    still looked up, so a missing one fails the dry run as it would fail a run."""
    names = target_names(settings)
    connection_specs(settings, names, config_key="sync.targets")
    return {name: MappingOnlyCatalog(name) for name in names}


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
        labels={name: c.label for name, c in settings.every_connection().items()},
    )


def engine_for(
    settings: Settings,
    ledger: Ledger,
    *,
    holder: str | None = None,
    mapping: LoadedMapping | None = None,
    built: Targets | None = None,
) -> Engine:
    """The engine for one cycle. ``built`` shares connectors already made for the same
    holder (the webhook server's verifiers and its worker's feeds are one connector,
    so one client and one client-side rate limit)."""
    holder = holder or new_holder()
    mapping = mapping or mapping_for(settings)
    built = built or targets_for(settings, ledger, holder, mapping=mapping)
    catalogs: dict[str, TargetCatalog] = {
        name: LazyCatalog(target) for name, target in built.targets.items()
    }
    retry = settings.retry
    return Engine(
        ledger=ledger,
        source=deal_source(
            settings, mapping, holder=holder, credentials=LedgerCredentialStore(ledger, holder)
        ),
        targets=built.targets,
        feeds=built.feeds,
        planner=planner_for(settings, mapping, catalogs),
        mapping=mapping,
        policy=RetryPolicy(retry.base_seconds, retry.cap_seconds, retry.max_attempts),
        now=utc_now,
        holder=holder,
        lease_ttl=timedelta(seconds=settings.sync.lease_ttl_seconds),
        source_connection=settings.sync.source,
        source_label=settings.connection(settings.sync.source).label,
    )
