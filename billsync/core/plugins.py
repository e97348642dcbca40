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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol

from billsync.core.problems import ConfigError, ConfigProblem
from billsync.core.protocols import (
    CredentialStore,
    DealSource,
    ErrorRule,
    InvoiceTarget,
    PaymentFeed,
    WebhookVerifier,
)
from billsync.core.settings import ConnectorSection
from billsync.core.target_mapping import TargetMapping

__all__ = [
    "ENTRY_POINT_GROUP",
    "BuildContext",
    "CommandContext",
    "CommandOpener",
    "ConnectorFactory",
    "ConnectorParts",
    "ConnectorPluginError",
    "ConnectorSpec",
    "CredentialHealth",
    "CredentialReport",
    "ErrorHint",
    "MappingSections",
    "StoredCredential",
    "discover",
    "installed",
    "installed_secret_patterns",
    "installed_specs",
    "plugin_problem",
]

ENTRY_POINT_GROUP = "billsync.connectors"


class ConnectorPluginError(ConfigError):
    """A connector named in the configuration is missing, broken or unfit for its role."""


def plugin_problem(key: str, reason: str) -> ConnectorPluginError:
    """One start-up problem about a connector; ``key`` is the setting to change."""
    return ConnectorPluginError([ConfigProblem(ENTRY_POINT_GROUP, key, reason)])


@dataclass(frozen=True)
class ConnectorParts:
    """What one connector provides; a part it does not have is None.

    A deal source sets ``source``; an invoice target sets ``target`` and usually ``feed``
    (payments back) and ``webhooks`` (None when no webhook secret is configured).
    """

    source: DealSource | None = None
    target: InvoiceTarget | None = None
    feed: PaymentFeed | None = None
    webhooks: WebhookVerifier | None = None

    def provides(self) -> list[str]:
        parts = ("source", "target", "feed", "webhooks")
        return [name for name in parts if getattr(self, name) is not None]


class MappingSections(Protocol):
    """The loaded mapping as a connector sees it: a section by name, as plain data
    (``source`` and ``writeback`` for a deal source), or None when it has none."""

    def section(self, name: str) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class BuildContext:
    """What billsync hands every connector besides its own settings section.

    ``holder`` names this process (leases, audit); ``credentials`` is the ledger-backed
    store for rotating OAuth tokens (None where no ledger is open, e.g. a dry run);
    ``mapping`` is the loaded mapping (None where the command has none);
    ``company_currency`` and ``start_from`` are the ``sync:`` settings a source needs
    (``start_from`` None: the source's own section decides); ``max_body_bytes`` is the
    largest webhook body the receiver accepts (``server.max_body_bytes``); ``sleep`` replaces
    ``time.sleep`` in retry back-offs — for tests, which must never wait.

    ``connection`` is the name of the connection being built (``qbo_uk``; the
    connector's own name for its plain section): the connector names itself by it
    wherever it names itself — its target and provider name, cursors, inbox events,
    log lines — so two companies of one kind never share ledger rows. ``peers`` are the
    other configured connections of the same kind, name → settings section: a verifier
    that receives one vendor app's notifications for several companies (some vendors
    send every company of an app to one URL) hands each to the peer that serves it
    (`WebhookNotification.provider`).
    """

    holder: str
    credentials: CredentialStore | None = None
    mapping: MappingSections | None = None
    company_currency: str = "USD"
    start_from: datetime | None = None
    max_body_bytes: int = 1024 * 1024
    sleep: Callable[[float], None] | None = None
    connection: str | None = None
    peers: Mapping[str, Any] = field(default_factory=dict)

    def connection_or(self, kind: str) -> str:
        """The connection's name; the connector's ``kind`` when built without one."""
        return self.connection or kind

    def setting(self, kind: str, key: str) -> str:
        """Where the operator sets ``key`` of this connection, for problem messages:
        ``<kind>.<key>`` for the plain section, ``connections.<name>.<key>`` for a
        named connection."""
        name = self.connection_or(kind)
        return f"{kind}.{key}" if name == kind else f"connections.{name}.{key}"


class ConnectorFactory(Protocol):
    """``build(section, context)``: the connector's parts from its own settings section.

    Builds without network traffic (validate what can be validated, raise
    `billsync.core.problems.ConfigError` naming the keys); the first call to a part talks
    to the vendor.
    """

    def __call__(self, section: Any, context: BuildContext, /) -> ConnectorParts: ...


@dataclass(frozen=True)
class ErrorHint:
    """Names what a failure is about, for one stored error ``code`` (`billsync failures
    show`, the ops pages): "Acme Billing item 'SKU-9' is inactive or deleted".

    ``says`` and ``also`` (an extra fix) are `str.format` templates over the failure's
    facts (``deal_id``, ``doc_number``, ``issue_date``, ``customer``) and the named groups
    of ``patterns``, regular expressions over the stored message that must all match; a
    group named ``entity`` also gives ``entity_lower``. A hint whose template needs a fact
    the failure lacks is skipped, so list the specific hints of a code before the plain
    one.
    """

    code: str
    says: str
    patterns: tuple[str, ...] = ()
    also: str | None = None


@dataclass(frozen=True)
class StoredCredential:
    """One credentials row of the ledger as `billsync status` hands it to a connector.
    ``data`` holds live secrets: derive times from it, never copy a value out."""

    name: str
    data: Mapping[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class CredentialReport:
    """The health of one stored credential: ``account`` says which (the vendor's company
    or account id), ``facts`` is its JSON for `billsync status --json` (expiry times and
    flags, never a secret), ``summary`` one line for people ("access token valid yes
    (until …); …") and ``warnings`` what needs a person (each makes `billsync status`
    exit 1)."""

    account: str
    facts: Mapping[str, Any]
    summary: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CredentialHealth:
    """How a connector reports the credentials it keeps in the ledger: the rows whose
    names start with ``prefix`` are its own (``<kind>:``), and ``report`` reads one
    at a time ``now`` without talking to the vendor."""

    prefix: str
    report: Callable[[StoredCredential, datetime], CredentialReport]


class CommandContext(Protocol):
    """What billsync's command line lends a connector's command once the configuration
    is read: the connector's own settings ``section`` and the ledger, through an
    interface small enough that the connector imports nothing of billsync but the core."""

    @property
    def section(self) -> Any:
        """The connector's validated settings section (its `ConnectorSpec.settings`)."""

    @property
    def connection(self) -> str:
        """The connection the command acts on: the connector's own name for its plain
        section, or the one ``billsync auth --connection NAME`` chose."""

    def credentials(self, *, create: bool) -> CredentialStore | None:
        """The ledger's credential store. ``create``: create or migrate the ledger first
        (to store credentials); otherwise None when the ledger does not exist yet at this
        version (nothing is stored there)."""

    def last_refusal(self) -> Mapping[str, str] | None:
        """The last sync run's refusal of this connector's credentials (``at``,
        ``run_id``, ``message``), or None; read from an existing ledger only."""


class CommandOpener(Protocol):
    """``open(ctx, config)``: what a connector's command calls first. ``ctx`` is the
    command's ``typer.Context`` (the global options live on it), ``config`` its
    ``--config`` value. Loads the configuration and sets up logging; a configuration
    problem ends the command with exit 2."""

    def __call__(self, ctx: Any, config: Path | None, /) -> CommandContext: ...


@dataclass(frozen=True)
class ConnectorSpec:
    """Everything vendor-shaped billsync needs from a connector, declared once: the
    object its entry point in the ``billsync.connectors`` group points at.

    - ``name``: the entry-point name, also its settings section (``acme_billing:``);
      ``label``: how people call the system in status lines and ops advice
      ("Acme Billing").
    - ``settings``: its section model (a `ConnectorSection`; secrets as ``SecretStr``),
      validated, read from the environment and ``_FILE`` secrets, masked and scrubbed
      like the built-in sections.
    - ``build``: the parts (`ConnectorFactory`).
    - ``configured_urls``: the URLs its section points API calls at (a sandbox, a
      custom host), and ``public_hosts``: the vendor's own host suffixes — together they
      attribute each HTTP call to this connector in call counts and metrics.
    - ``secret_patterns``: regular expressions for its credentials' shapes (API keys,
      tokens), scrubbed from every log line even when they are not in the settings.
    - ``error_rules``: its error table as (stored code or None, `ErrorRule`) pairs, for
      ops advice to find the fix of a stored failure (the rule whose fix its message
      carries; the code breaks ties). A callable, so the vendor SDK the table names is
      imported only when advice is asked for. None: advice reads the message's shape.
    - ``error_hints``: `ErrorHint` rows naming the object of a failure by stored code.
    - ``credential_health``: how `billsync status` reports the credentials it keeps in
      the ledger (`CredentialHealth`); None when it keeps none worth reporting.
    - ``cursor_at``: a deal source's cursor at a point in time, reading every deal
      changed after it — how `--since`, `--backfill` and ``sync.start_from`` start a
      first run. None: the source cannot start at a date.
    - ``cli``: ``cli(open)`` builds its ``billsync auth <name>`` command line, a
      ``typer.Typer`` made with ``add_completion=False`` (typed loosely: the core never
      imports typer). One command and no callback mounts as ``billsync auth <name>
      [OPTIONS]`` itself, several as its sub-commands. A command calls ``open(ctx,
      config)`` (`CommandOpener`) for its settings section and the ledger's credential
      store; it never imports billsync's CLI or ledger. Called only when ``billsync
      auth`` is used. None: no such command.
    - ``account``: the vendor account a settings section points at, read from the
      section without a call (a company or account id), or None. The ledger pins each
      connection name to it, so re-pointing a name at another company is refused at
      start-up instead of mixing two companies' rows. None: the kind alone is pinned.
    - ``mapping``: a target's part of the mapping file — its ``products``, ``tax`` and
      per-term models and the rules the planner applies (`TargetMapping`). None: generic
      behaviour (look products up by code, no tax, the terms name as it is).
    """

    name: str
    label: str
    settings: type[ConnectorSection]
    build: ConnectorFactory
    configured_urls: Callable[[Any], Iterable[str | None]] = lambda section: ()
    public_hosts: tuple[str, ...] = ()
    secret_patterns: tuple[str, ...] = field(default=())
    error_rules: Callable[[], Iterable[tuple[str | None, ErrorRule]]] | None = None
    error_hints: tuple[ErrorHint, ...] = ()
    credential_health: CredentialHealth | None = None
    cursor_at: Callable[[datetime], str] | None = None
    cli: Callable[[CommandOpener], Any] | None = None
    account: Callable[[Any], str | None] | None = None
    mapping: TargetMapping | None = None


def installed() -> dict[str, list[EntryPoint]]:
    """Every entry point of the group, by name (several when packages collide)."""
    found: dict[str, list[EntryPoint]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, []).append(entry)
    return found


def discover(
    names: Iterable[str], *, config_key: str, fix: str | None = None
) -> dict[str, ConnectorSpec]:
    """Load the spec of each named connector, in order.

    ``config_key`` is the setting the names came from (``sync.targets``): every problem
    names it. ``fix`` is the alternative to installing a missing connector (default:
    remove it from that setting). All problems are reported at once, one line each.
    """
    available = installed()
    specs: dict[str, ConnectorSpec] = {}
    problems: list[ConfigProblem] = []
    for name in dict.fromkeys(names):
        spec, reason = _one(name, available, fix or f"remove it from {config_key}")
        if spec is None:
            problems.append(ConfigProblem(ENTRY_POINT_GROUP, config_key, reason))
        else:
            specs[name] = spec
    if problems:
        raise ConnectorPluginError(problems)
    return specs


def installed_specs() -> tuple[dict[str, ConnectorSpec], dict[str, str]]:
    """Every installed connector's spec by name, and why each one that cannot be used
    failed (the configuration reports it only when that connector's section is used)."""
    available = installed()
    specs: dict[str, ConnectorSpec] = {}
    broken: dict[str, str] = {}
    for name in sorted(available):
        spec, reason = _one(name, available, "uninstall it")
        if spec is None:
            broken[name] = reason
        else:
            specs[name] = spec
    return specs, broken


def installed_secret_patterns() -> list[str]:
    """The credential shapes of every installed connector (for a scrubber made before
    the configuration is read, e.g. the CLI's last-resort error message)."""
    return [p for spec in installed_specs()[0].values() for p in spec.secret_patterns]


def _one(
    name: str, available: Mapping[str, list[EntryPoint]], fix: str
) -> tuple[ConnectorSpec | None, str]:
    entries = available.get(name, [])
    if not entries:
        return None, _missing(name, fix, available)
    if len(entries) > 1:
        packages = ", ".join(sorted(_package(e) for e in entries))
        return None, (
            f"connector '{name}' is provided by several packages ({packages}); "
            "uninstall all but one"
        )
    return _load(name, entries[0])


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


def _load(name: str, entry: EntryPoint) -> tuple[ConnectorSpec | None, str]:
    try:
        loaded = entry.load()
    except Exception as exc:  # a plug-in's import may raise anything; report, don't crash
        reason = (
            f"connector '{name}' from package {_package(entry)} failed to load "
            f"({entry.value}): {type(exc).__name__}: {exc}"
        )
        return None, reason
    if not isinstance(loaded, ConnectorSpec):
        reason = (
            f"connector '{name}' from package {_package(entry)} points at {entry.value}, "
            "which is not a billsync.core.plugins.ConnectorSpec"
        )
        return None, reason
    if loaded.name != name:
        reason = (
            f"connector '{name}' from package {_package(entry)} declares the name "
            f"'{loaded.name}': the entry-point name and ConnectorSpec.name must agree"
        )
        return None, reason
    return loaded, ""
