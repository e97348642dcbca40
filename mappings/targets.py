"""Which names the mapping file may use for targets, and what each one's mapping is.

Keys under ``products``, ``tax``, ``currencies``, ``terms.values.<term>`` and
``routing`` are connection names or connector kinds. The mapping layer imports no
connector and reads no configuration: its caller hands it the installed connectors'
specs by kind and the configured connections (name → kind), as `MappingTargets`.

For a connection, its own key wins over its kind's (``products.ledgerly_uk``, else
``products.ledgerly``, else the kind's model defaults): the whole section, not key by
key, so a company's table never silently mixes with another's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from billsync.core.plugins import ConnectorSpec, installed_specs
from billsync.core.target_mapping import GENERIC, TargetMapping, connection_label


@dataclass(frozen=True)
class MappingTargets:
    """The installed connectors by kind (``specs``) and the configured connections,
    name → kind (each kind is also the connection of its own plain section)."""

    specs: Mapping[str, ConnectorSpec]
    connections: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def installed(cls) -> MappingTargets:
        """Every installed connector, each the one connection of its kind: what a
        mapping file is checked against without a configuration."""
        specs = installed_specs()[0]
        return cls(specs, {name: name for name in specs})

    def names(self) -> list[str]:
        """Every name a target key may be: the connections, then kinds not listed."""
        return list(dict.fromkeys([*self.connections, *self.specs]))

    def kind_of(self, name: str) -> str | None:
        kind = self.connections.get(name, name)
        return kind if kind in self.specs else None

    def mapping(self, name: str) -> TargetMapping:
        """The mapping part of connection (or kind) ``name``; `GENERIC` when its
        connector declares none or the name is unknown (a target built in a test)."""
        kind = self.kind_of(name)
        found = self.specs[kind].mapping if kind is not None else None
        return found or GENERIC

    def label(self, name: str) -> str:
        kind = self.kind_of(name)
        if kind is None:
            return name
        return connection_label(self.specs[kind].label, name, kind)

    def model(self, name: str, section: str) -> Any:
        """The model of ``<section>.<name>`` (``products``, ``tax`` or ``term``), or
        None when that connector takes no such key."""
        if self.kind_of(name) is None:
            return None
        model: Any = getattr(self.mapping(name), section)
        return model

    def entry(self, container: BaseModel, name: str) -> tuple[str, Any]:
        """The entry for connection ``name`` in a target-keyed ``container`` and the key
        it was found under: the connection's own, else its kind's; (the kind, None)
        when neither is there."""
        kind = self.kind_of(name) or name
        for key in dict.fromkeys((name, kind)):
            value = getattr(container, key, None)
            if value is not None:
                return key, value
        return kind, None

    def section(self, container: BaseModel, name: str, model: str) -> tuple[str, Any]:
        """`entry`, else the defaults of the connector's ``model`` (``products``,
        ``tax``; None when it has no such model)."""
        key, value = self.entry(container, name)
        if value is not None:
            return key, value
        default = self.model(name, model)
        return key, default() if isinstance(default, type) else None
