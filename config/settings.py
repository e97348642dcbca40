"""Typed settings for every part of billsync.

One section model per concern; the top-level `Settings` is a pydantic-settings class so
the environment (`BILLSYNC_<SECTION>__<KEY>`) works without any glue. Loading from a
YAML file, `<KEY>_FILE` secret files and the error report live in `billsync.config.loader`.

The sections here are billsync's own. Each installed connector adds its own section,
declared by its plug-in spec (`ConnectorSpec.settings`): `with_connectors` builds the
`Settings` class that has them, so nothing here names a vendor.

Every section forbids unknown keys: a typo in a config file must stop start-up, not be
silently ignored while the default quietly applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, SecretStr, create_model
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from billsync.core.plugins import ConnectorSpec
from billsync.core.settings import ConnectorSection, Section, SourceSection, collect_secrets
from billsync.core.target_mapping import connection_label

ENV_PREFIX = "BILLSYNC_"
ENV_NESTED_DELIMITER = "__"
CONNECTIONS = "connections"
# A connection's name is a path segment (/webhooks/<name>), a metrics label value and a
# ledger key: lower-case, starting with a letter, like a connector's name.
CONNECTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class LedgerSettings(Section):
    # Secret-bearing, not a secret (the host and database are worth showing): accepted
    # from BILLSYNC_LEDGER__URL_FILE, and its password is masked wherever it is shown.
    url: str = Field(
        default="sqlite:///./billsync.db",
        description="SQLAlchemy URL: sqlite:///path (default) or postgresql+psycopg://…",
        json_schema_extra={"secret_bearing": True},
    )


class SyncSettings(Section):
    # Connectors by entry-point name (`billsync.connectors`, docs/connectors.md): the deal
    # source, and the invoice targets (None: each built-in target whose section is enabled).
    source: str = "salesforce"
    targets: list[str] | None = None
    default_target: str | None = None
    company_currency: CurrencyCode = "USD"
    mapping_files: list[Path] = Field(default_factory=list)
    on_deal_change: Literal["flag", "void_and_reissue"] = "flag"
    lease_ttl_seconds: int = Field(default=90, ge=3, le=3600)
    # Where a ledger that has never run starts reading deals: closed-won deals last
    # changed before it are history, never invoiced. Unset (and no <source>.start_from),
    # the first `billsync run` stops (exit 2) until `--since DATE` or `--backfill` chooses.
    start_from: AwareDatetime | None = None


class RetrySettings(Section):
    base_seconds: int = Field(default=30, ge=1)
    cap_seconds: int = Field(default=6 * 3600, ge=1)
    max_attempts: int = Field(default=8, ge=1)


class LoggingSettings(Section):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class ServerSettings(Section):
    host: str = "0.0.0.0"  # noqa: S104 - the container's webhook receiver listens on all interfaces
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A client gets this long to send a request's headers, then its connection closes.
    header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # Open connections per process; past it the oldest one still waiting for headers
    # is closed. Kept below the process's file-descriptor limit.
    max_connections: int = Field(default=1000, ge=16)


class OpsSettings(Section):
    token: SecretStr | None = None
    # A signed-in ops page session ends after this long without a request.
    session_idle_minutes: int = Field(default=30, ge=1, le=720)


class Settings(BaseSettings):
    """The whole configuration. Precedence: environment, then `_FILE` secrets, then YAML."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)

    # The installed connectors whose sections this class has (`with_connectors`).
    connector_specs: ClassVar[dict[str, ConnectorSpec]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The loader passes the YAML file (with secret files already read) as init
        # values; the environment outranks it, as operators expect from containers.
        return (env_settings, init_settings)

    def secret_values(self) -> list[str]:
        """Every configured secret in clear, for the log scrubber and leak tests."""
        found: list[str] = _url_passwords(self.ledger.url)
        collect_secrets(self, found)
        return [s for s in found if s]

    def connector(self, name: str) -> ConnectorSection:
        """The settings section of the installed connector ``name``."""
        if name not in self.connector_specs:
            raise KeyError(f"no connector section '{name}'")
        section: ConnectorSection = getattr(self, name)
        return section

    def connector_sections(self) -> dict[str, ConnectorSection]:
        return {name: self.connector(name) for name in self.connector_specs}

    def named_connections(self) -> dict[str, ConnectorSection]:
        """The ``connections:`` entries by name (empty when there are none)."""
        found: dict[str, ConnectorSection] = getattr(self, CONNECTIONS, None) or {}
        return dict(found)

    def every_connection(self) -> dict[str, Connection]:
        """Every configured connection by name: each installed connector's own section
        (the connection named after its kind, as in a single-company configuration),
        then the ``connections:`` entries."""
        found = {
            name: Connection(name, name, spec, self.connector(name))
            for name, spec in self.connector_specs.items()
        }
        for name, section in self.named_connections().items():
            kind = str(getattr(section, "kind"))  # noqa: B009 - added by with_connectors
            found[name] = Connection(name, kind, self.connector_specs[kind], section)
        return found

    def connection_kinds(self) -> dict[str, str]:
        """Connection name → connector kind, for every configured connection."""
        return {name: c.kind for name, c in self.every_connection().items()}

    def connection(self, name: str) -> Connection:
        """The connection ``name`` (a connector's own section or a ``connections:``
        entry); KeyError when none is configured by that name."""
        found = self.every_connection().get(name)
        if found is None:
            raise KeyError(f"no connection '{name}'")
        return found

    def start_from(self) -> datetime | None:
        """Where a ledger that has never run starts reading deals: ``sync.start_from``,
        else the deal source's own ``start_from`` (``<source>.start_from``)."""
        if self.sync.start_from is not None:
            return self.sync.start_from
        source = self.every_connection().get(self.sync.source)
        section = source.section if source else None
        return section.start_from if isinstance(section, SourceSection) else None

    def secret_patterns(self) -> list[str]:
        """The installed connectors' credential shapes, for the log scrubber."""
        return [p for spec in self.connector_specs.values() for p in spec.secret_patterns]


def _url_passwords(url: str) -> list[str]:
    """The password of a URL (user part or libpq ``?password=``), as written and decoded."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""] + [v for k, v in parse_qsl(parts.query) if k == "password"]
    except ValueError:
        return [url]  # unparseable: the whole value counts as secret
    return [s for v in found if v for s in {v, unquote(v), quote(v, safe="")}]


@dataclass(frozen=True)
class Connection:
    """One configured account of one connector kind: its ``name`` (ledger rows, cursors,
    ``/webhooks/<name>``, metrics labels), its connector ``kind`` and ``spec``, and its
    validated settings ``section``."""

    name: str
    kind: str
    spec: ConnectorSpec
    section: ConnectorSection

    @property
    def label(self) -> str:
        """How people call it: the connector's label, and the name when it differs
        from the kind ("Label (name)")."""
        return connection_label(self.spec.label, self.name, self.kind)


def with_connectors(specs: dict[str, ConnectorSpec]) -> type[Settings]:
    """`Settings` with one section per installed connector, named as the connector,
    built from its declared model (every key validated, its secrets masked), and a
    ``connections:`` map whose entries are validated by the model of their ``kind``."""
    clash = set(specs) & (set(Settings.model_fields) | {CONNECTIONS})
    if clash:
        raise ValueError(f"connector names clash with billsync's own sections: {sorted(clash)}")
    fields: dict[str, Any] = {
        name: (spec.settings, Field(default_factory=spec.settings)) for name, spec in specs.items()
    }
    if specs:
        reserved = set(specs) | set(Settings.model_fields) | {CONNECTIONS}
        name: Any = Annotated[str, AfterValidator(lambda value: _connection_name(value, reserved))]
        entry: Any = _connection_union(specs)
        fields[CONNECTIONS] = (dict[name, entry], Field(default_factory=dict))
    cls: type[Settings] = create_model("Settings", __base__=Settings, **fields)
    cls.connector_specs = dict(specs)
    return cls


@cache
def connection_model(spec: ConnectorSpec) -> type[ConnectorSection]:
    """A ``connections:`` entry of this kind: the connector's own section model plus
    ``kind``; listing a connection enables it unless it says ``enabled: false``."""
    kind: Any = Literal[spec.name]
    model = create_model(
        f"{spec.name.title().replace('_', '')}Connection",
        __base__=spec.settings,
        kind=(kind, ...),
        enabled=(bool, True),
    )
    return cast(type[ConnectorSection], model)


def _connection_union(specs: dict[str, ConnectorSpec]) -> Any:
    models = tuple(connection_model(spec) for spec in specs.values())
    union = models[0] if len(models) == 1 else Union[models]  # noqa: UP007 - built at run time
    return Annotated[union, Field(discriminator="kind")]


def _connection_name(value: str, reserved: set[str]) -> str:
    if not CONNECTION_NAME.match(value):
        raise ValueError(
            f"the name '{value}' must be 1-40 lower-case letters, digits or '_', "
            "starting with a letter"
        )
    if value in reserved:
        raise ValueError(
            f"the name '{value}' is taken by a connector's own section or one of "
            "billsync's sections; give the connection another name (e.g. qbo_us)"
        )
    return value


def sections_of(settings_cls: type[Settings]) -> dict[str, type[BaseModel]]:
    """Each section's model by name (billsync's own and the connectors'; not the
    ``connections:`` map, whose entries `connection_models` gives by kind)."""
    return {
        name: field.annotation  # type: ignore[misc]
        for name, field in settings_cls.model_fields.items()
        if name != CONNECTIONS
    }


def connection_models(settings_cls: type[Settings]) -> dict[str, type[BaseModel]]:
    """The model of a ``connections:`` entry, by kind."""
    return {kind: connection_model(spec) for kind, spec in settings_cls.connector_specs.items()}
