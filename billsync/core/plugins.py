"""Connectors as plug-ins: the `billsync.connectors` entry-point group.

A connector package registers one entry point whose object is a `ConnectorFactory`, a
callable ``build(settings, context) -> ConnectorParts``. Configuration names connectors
by their entry-point names (``sync.source``, ``sync.targets``); the three built-ins
register exactly the way a third-party package does (pyproject.toml), so nothing in
the engine knows which connectors exist.

Finding a plug-in is a start-up matter: a name with no entry point, or an entry point
that cannot be imported, is a `ConnectorPluginError` (a `billsync.core.problems.ConfigError`, so
the command prints one line per problem and exits 2 before doing anything), naming the
package to install or the package that failed and why — never a traceback.

How to write one, and the contract tests it must pass: docs/connectors.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from billsync.core.canonical import Deal, DealWriteBack
from billsync.core.problems import ConfigError, ConfigProblem
from billsync.core.protocols import (
    Checkpointed,
    ConnectorError,
    CredentialStore,
    Cursor,
    DealSource,
    InvoiceTarget,
    PaymentFeed,
    ReadRejection,
    WebhookVerifier,
)

if TYPE_CHECKING:
    from billsync.config.settings import Settings
    from billsync.mappings.loader import LoadedMapping

__all__ = [
    "ENTRY_POINT_GROUP",
    "BuildContext",
    "ConnectorFactory",
    "ConnectorParts",
    "ConnectorPluginError",
    "SourceConnector",
    "discover",
    "installed",
    "plugin_problem",
]

ENTRY_POINT_GROUP = "billsync.connectors"


class ConnectorPluginError(ConfigError):
    """A connector named in the configuration is missing, broken or unfit for its role."""


def plugin_problem(key: str, reason: str) -> ConnectorPluginError:
    """One start-up problem about a connector; ``key`` is the setting to change."""
    return ConnectorPluginError([ConfigProblem(ENTRY_POINT_GROUP, key, reason)])


@runtime_checkable
class SourceConnector(DealSource, Protocol):
    """A `DealSource` as the engine drives it.

    ``pull`` reports deals it cannot read (a `ReadRejection` naming the field and the
    fix) instead of dropping them, so they become needs-attention failures;
    ``write_back`` also takes the sync error to show on each deal. The source holds
    connections: it is a context manager and ``close`` releases them.
    """

    def pull(self, since: Cursor | None) -> Iterator[Checkpointed[Deal | ReadRejection]]: ...

    def write_back(
        self,
        updates: Sequence[DealWriteBack],
        errors: Mapping[str, str] | None = None,
    ) -> Mapping[str, ConnectorError]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


@dataclass(frozen=True)
class ConnectorParts:
    """What one connector provides; a part it does not have is None.

    A deal source sets ``source``; an invoice target sets ``target`` and usually ``feed``
    (payments back) and ``webhooks`` (None when no webhook secret is configured).
    """

    source: SourceConnector | None = None
    target: InvoiceTarget | None = None
    feed: PaymentFeed | None = None
    webhooks: WebhookVerifier | None = None

    def provides(self) -> list[str]:
        parts = ("source", "target", "feed", "webhooks")
        return [name for name in parts if getattr(self, name) is not None]


@dataclass(frozen=True)
class BuildContext:
    """What billsync hands every connector besides the settings.

    ``holder`` names this process (leases, audit); ``credentials`` is the ledger-backed
    store for rotating OAuth tokens (None where no ledger is open, e.g. a dry run);
    ``mapping`` is the loaded mapping (None where the command has none); ``sleep``
    replaces ``time.sleep`` in retry back-offs — for tests, which must never wait.
    """

    holder: str
    credentials: CredentialStore | None = None
    mapping: LoadedMapping | None = None
    sleep: Callable[[float], None] | None = None


class ConnectorFactory(Protocol):
    """The object an entry point of the group loads: ``build(settings, context)``.

    Builds without network traffic (validate what can be validated, raise
    `billsync.core.problems.ConfigError` naming the keys); the first call to a part talks to the
    vendor.
    """

    def __call__(self, settings: Settings, context: BuildContext, /) -> ConnectorParts: ...


def installed() -> dict[str, list[EntryPoint]]:
    """Every entry point of the group, by name (several when packages collide)."""
    found: dict[str, list[EntryPoint]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, []).append(entry)
    return found


def discover(
    names: Iterable[str], *, config_key: str, fix: str | None = None
) -> dict[str, ConnectorFactory]:
    """Load the factory of each named connector, in order.

    ``config_key`` is the setting the names came from (``sync.targets``): every problem
    names it. ``fix`` is the alternative to installing a missing connector (default:
    remove it from that setting). All problems are reported at once, one line each.
    """
    available = installed()
    factories: dict[str, ConnectorFactory] = {}
    problems: list[ConfigProblem] = []
    for name in dict.fromkeys(names):
        entries = available.get(name, [])
        if not entries:
            reason = _missing(name, fix or f"remove it from {config_key}", available)
            problems.append(ConfigProblem(ENTRY_POINT_GROUP, config_key, reason))
        elif len(entries) > 1:
            packages = ", ".join(sorted(_package(e) for e in entries))
            reason = (
                f"connector '{name}' is provided by several packages ({packages}); "
                "uninstall all but one"
            )
            problems.append(ConfigProblem(ENTRY_POINT_GROUP, config_key, reason))
        else:
            factory, reason = _load(name, entries[0])
            if factory is None:
                problems.append(ConfigProblem(ENTRY_POINT_GROUP, config_key, reason))
            else:
                factories[name] = factory
    if problems:
        raise ConnectorPluginError(problems)
    return factories


def _missing(name: str, fix: str, available: Mapping[str, list[EntryPoint]]) -> str:
    known = ", ".join(sorted(available)) or "none"
    return (
        f"no connector '{name}' is installed: pip install billsync-{name} or {fix} "
        f"(installed connectors: {known})"
    )


def _package(entry: EntryPoint) -> str:
    dist = entry.dist
    if dist is None:
        return entry.module
    version = dist.version
    return f"{dist.name} {version}" if version else dist.name


def _load(name: str, entry: EntryPoint) -> tuple[ConnectorFactory | None, str]:
    try:
        loaded = entry.load()
    except Exception as exc:  # a plug-in's import may raise anything; report, don't crash
        reason = (
            f"connector '{name}' from package {_package(entry)} failed to load "
            f"({entry.value}): {type(exc).__name__}: {exc}"
        )
        return None, reason
    if not callable(loaded):
        reason = (
            f"connector '{name}' from package {_package(entry)} points at {entry.value}, "
            "which is not a build(settings, context) function"
        )
        return None, reason
    factory: ConnectorFactory = loaded
    return factory, ""
