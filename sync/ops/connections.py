"""The configured connections as the operator surfaces show them (status, failures,
reports, the ops pages): each one's name, connector kind, label, role and account.

A connection's name is what the ledger stores (``target``/``provider`` columns, work
item payloads, cursors), so every surface groups and filters by it and reaches its
connector's spec — label, error table, credential health — through its kind. Nothing
here names a vendor: the kinds and labels come from the connectors' specs.

Without a configuration (a test, a tool that only has the ledger) each installed
connector is the one connection named after its kind, as in a single-company
deployment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from billsync.core.plugins import ConnectorSpec, installed_specs
from billsync.core.settings import SourceSection

if TYPE_CHECKING:
    from billsync.config.settings import Settings

SOURCE, TARGET, UNUSED = "source", "target", "unused"


@dataclass(frozen=True)
class ConnectionView:
    """One connection as people see it. ``role``: the deal source, a target, or
    configured but used by neither (``sync.targets`` leaves it out). ``account``: the
    vendor account its section points at (`ConnectorSpec.account`), when it says."""

    name: str
    kind: str
    label: str
    enabled: bool
    role: str
    account: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "enabled": self.enabled,
            "role": self.role,
        }


@dataclass(frozen=True)
class Connections:
    """The connections a deployment has, by name, and the kinds' specs."""

    views: Mapping[str, ConnectionView]
    specs: Mapping[str, ConnectorSpec]
    source: str

    def kind(self, name: str) -> str:
        """The connector kind of a stored system name (a name no connection has is
        taken as a kind: rows written before connections, or billsync itself)."""
        view = self.views.get(name)
        return view.kind if view is not None else name

    def spec(self, name: str) -> ConnectorSpec | None:
        return self.specs.get(self.kind(name))

    def label(self, name: str) -> str:
        """ "Ledgerly (ledgerly_uk)" for a named connection, the connector's label for the
        one named after its kind, the name itself when no connector is installed."""
        view = self.views.get(name)
        if view is not None:
            return view.label
        spec = self.specs.get(name)
        return spec.label if spec is not None else name

    def kinds(self) -> dict[str, str]:
        return {name: view.kind for name, view in self.views.items()}

    def in_use(self) -> list[ConnectionView]:
        """The connections worth a line in status: used, or enabled."""
        return [view for view in self.views.values() if view.role != UNUSED or view.enabled]

    def billing(self) -> list[ConnectionView]:
        """The connections in use that invoices and payments can name (all but the
        deal source): the choices of a connection filter."""
        return [view for view in self.in_use() if view.role != SOURCE]

    def owner(self, kind: str, account: str) -> str:
        """The connection of ``kind`` whose section points at ``account`` (a stored
        credential's), else the connection named after the kind."""
        for view in self.views.values():
            if view.kind == kind and view.account is not None and view.account == account:
                return view.name
        return kind


def from_specs(specs: Mapping[str, ConnectorSpec], source: str | None = None) -> Connections:
    """One connection per installed connector, named after its kind (no configuration
    at hand). ``source``: the deal source; default the one installed connector whose
    section is a deal source's."""
    found = source or default_source(specs.values())
    views = {
        name: ConnectionView(
            name, name, spec.label, True, SOURCE if name == found else TARGET, None
        )
        for name, spec in specs.items()
    }
    return Connections(views, specs, found)


@cache
def installed(source: str | None = None) -> Connections:
    """`from_specs` over the installed connectors, loaded once per process."""
    return from_specs(installed_specs()[0], source)


def default_source(specs: Iterable[ConnectorSpec]) -> str:
    """The only installed deal source (its section model is a `SourceSection`), or ""
    when there is none or several: then the caller must say which."""
    sources = [spec.name for spec in specs if issubclass(spec.settings, SourceSection)]
    return sources[0] if len(sources) == 1 else ""


def from_settings(settings: Settings) -> Connections:
    """Every configured connection (each connector's own section and every
    ``connections:`` entry), with its role in this configuration."""
    from billsync.sync.wiring import target_names

    targets = set(target_names(settings))
    source = settings.sync.source
    views: dict[str, ConnectionView] = {}
    for name, connection in settings.every_connection().items():
        role = SOURCE if name == source else TARGET if name in targets else UNUSED
        account = connection.spec.account(connection.section) if connection.spec.account else None
        views[name] = ConnectionView(
            name=name,
            kind=connection.kind,
            label=connection.label,
            enabled=connection.section.enabled,
            role=role,
            account=account,
        )
    return Connections(views, dict(settings.connector_specs), source)
