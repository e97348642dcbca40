"""Typed settings for every part of billsync.

One section model per concern; the top-level `Settings` is a pydantic-settings class so
the environment (`BILLSYNC_<SECTION>__<KEY>`) works without any glue. Loading from a
YAML file, `<KEY>_FILE` secret files and the error report live in `billsync.config.loader`.

Every section forbids unknown keys: a typo in a config file must stop start-up, not be
silently ignored while the default quietly applies.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "BILLSYNC_"
ENV_NESTED_DELIMITER = "__"

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def _require_secrets(self, *names: str) -> None:
        """Raise a `missing_secret` error for the first secret that is absent.

        The error carries the key so the loader can report `section.key`, not just
        `section`, and it never carries a value.
        """
        for name in names:
            value = getattr(self, name)
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
                raise PydanticCustomError(
                    "missing_secret",
                    "required secret is missing",
                    {"key": name},
                )


class LedgerSettings(Section):
    # Secret-bearing, not a secret (the host and database are worth showing): accepted
    # from BILLSYNC_LEDGER__URL_FILE, and its password is masked wherever it is shown.
    url: str = Field(
        default="sqlite:///./billsync.db",
        description="SQLAlchemy URL: sqlite:///path (default) or postgresql+psycopg://…",
        json_schema_extra={"secret_bearing": True},
    )


class SalesforceSettings(Section):
    enabled: bool = True
    auth: Literal["jwt", "client_credentials"] = "jwt"
    instance_url: str | None = None
    login_url: str = "https://login.salesforce.com"
    api_version: str = Field(default="66.0", pattern=r"^\d{2,3}\.0$")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    private_key_file: Path | None = None
    ca_bundle: Path | None = None
    query_batch_size: int = Field(default=2000, ge=200, le=2000)
    overlap_minutes: int = Field(default=5, ge=0, le=1440)
    # Reconciliation lists won deals changed in the last this many days and compares
    # them with the ledger (a deal that became visible late is still invoiced).
    won_check_days: int = Field(default=30, ge=1, le=3650)
    quota_floor_percent: Decimal = Field(default=Decimal("10"), ge=0, le=100)
    # Once stopped at the floor, a long-lived process (serve) re-reads the allocation
    # this often and resumes when it is back above the floor.
    quota_recheck_s: int = Field(default=300, ge=1, le=86400)
    start_from: AwareDatetime | None = None
    record_types: list[str] = Field(default_factory=list)
    extra_where: str | None = None
    # Whether the org has multi-currency (the CurrencyIsoCode field): "auto" asks for it
    # and falls back to sync.company_currency when Salesforce says the field is unknown.
    multi_currency: Literal["auto"] | bool = "auto"
    timeout_s: int = Field(default=60, ge=1, le=600)
    retry_attempts: int = Field(default=4, ge=1, le=10)
    writeback_batch_size: int = Field(default=200, ge=1, le=200)
    # Reuse the session stored in the ledger for this long after it was issued (one
    # login less per run); a refused one is renewed at once. 0: log in on every run.
    session_reuse_s: int = Field(default=3600, ge=0, le=86400)

    @model_validator(mode="after")
    def _credentials_for_flow(self) -> Self:
        if not self.enabled:
            return self
        if self.auth == "client_credentials":
            self._require_secrets("client_secret")
        return self


class QuickBooksSettings(Section):
    enabled: bool = False
    environment: Literal["sandbox", "production"] = "production"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    realm_id: str | None = None
    # Bootstrap only: used when the ledger holds no token yet (e.g. automated set-up);
    # after the first refresh the rotated token stored in the ledger wins.
    refresh_token: SecretStr | None = None
    redirect_uri: str | None = None
    minorversion: int = Field(default=75, ge=75)
    base_url: str | None = None
    discovery_url: str | None = None
    verifier_token: SecretStr | None = None
    ca_bundle: Path | None = None
    home_currency: CurrencyCode = "USD"
    # Transport: QBO aborts requests after 120 s, so waiting longer is pointless.
    timeout_s: int = Field(default=60, ge=1, le=120)
    retry_attempts: int = Field(default=4, ge=1, le=10)
    # Intuit sends no Retry-After on 429; its guidance is to wait 60 s.
    throttle_wait_s: int = Field(default=60, ge=0, le=600)
    # Client-side limits per realm (Intuit: 500/min, 10 concurrent, 40 batch/min).
    requests_per_minute: int = Field(default=500, ge=1, le=500)
    max_concurrent: int = Field(default=10, ge=1, le=10)
    batch_requests_per_minute: int = Field(default=40, ge=1, le=40)
    batch_size: int = Field(default=30, ge=1, le=30)
    # Tokens: refresh this long before the access token expires; wait this long for
    # another process that holds the refresher lease.
    token_refresh_margin_s: int = Field(default=300, ge=0, le=3000)
    refresh_wait_s: int = Field(default=30, ge=1, le=600)
    # Customers. Whether a shared email counts as evidence for adopting an existing
    # customer (never alone: the name must agree too; see billsync/core/customer_identity.py).
    match_customer_by_email: bool = True
    display_name_colon_replacement: str = Field(default="-", max_length=3, pattern=r"^[^:]*$")
    duplicate_name_strategy: Literal["account_number", "account_id", "fail"] = "account_number"
    reactivate_inactive_customers: bool = False
    # Invoices.
    send_after_create: bool = False
    lookup_before_create: bool = True
    # Payment feed: re-read this many seconds before the CDC cursor (deduplicated).
    cdc_overlap_s: int = Field(default=300, ge=0, le=3600)

    @model_validator(mode="after")
    def _credentials_when_enabled(self) -> Self:
        if self.enabled:
            self._require_secrets("client_secret")
        return self


class StripeSettings(Section):
    enabled: bool = False
    api_key: SecretStr | None = None
    base_url: str | None = None
    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    ca_bundle: Path | None = None
    # None: the version stripe-python pins (16.1.0: 2026-10-28.endive). Requests send it
    # and webhooks rendered with any other version are refused, so the webhook
    # endpoint's API version must be set to the same value in the Stripe Dashboard.
    api_version: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}\.[a-z]+$")
    timeout_s: int = Field(default=30, ge=1, le=600)
    # stripe-python's own retries (StripeClient does none by default and never retries a
    # plain 429); billsync retries in-call itself, so more here multiplies the attempts.
    max_network_retries: int = Field(default=0, ge=0, le=5)
    retry_attempts: int = Field(default=4, ge=1, le=10)
    # Client-side request budget; None: 25/s for test keys, 100/s for live keys.
    rate_limit_per_s: int | None = Field(default=None, ge=1, le=1000)
    # Invoices created at the same time (each is 4 calls in a row); they share the
    # rate budget above, so more only helps while Stripe's latency leaves it unused.
    concurrency: int = Field(default=4, ge=1, le=16)
    send_after_finalize: bool = True
    # How a finalized send_invoice invoice reaches the customer (with send_after_finalize):
    # send_call makes billsync call /send; stripe_emails finalizes it with auto_advance so
    # Stripe emails it per the account's email settings (one call fewer per invoice, but
    # only if "Email finalized invoices to customers" is on in the Stripe Dashboard).
    delivery: Literal["send_call", "stripe_emails"] = "send_call"
    automatic_tax: bool = False
    lines_per_call: int = Field(default=250, ge=1, le=250)
    # Zero is not allowed: a signature check without a time window accepts replays.
    webhook_tolerance_s: int = Field(default=300, ge=10, le=3600)

    @model_validator(mode="after")
    def _key_when_enabled(self) -> Self:
        if self.enabled:
            self._require_secrets("api_key")
        return self


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
    # changed before it are history, never invoiced. Unset (and no salesforce.start_from),
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
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)
    quickbooks: QuickBooksSettings = Field(default_factory=QuickBooksSettings)
    stripe: StripeSettings = Field(default_factory=StripeSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)

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
        _collect_secrets(self, found)
        return [s for s in found if s]


def _url_passwords(url: str) -> list[str]:
    """The password of a URL (user part or libpq ``?password=``), as written and decoded."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""] + [v for k, v in parse_qsl(parts.query) if k == "password"]
    except ValueError:
        return [url]  # unparseable: the whole value counts as secret
    return [s for v in found if v for s in {v, unquote(v), quote(v, safe="")}]


def _collect_secrets(value: Any, found: list[str]) -> None:
    if isinstance(value, SecretStr):
        found.append(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect_secrets(getattr(value, name), found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_secrets(item, found)


def secret_field_names(section: type[BaseModel]) -> set[str]:
    """Names of the fields of `section` that hold secrets (SecretStr or lists of them)."""
    return {
        name for name, field in section.model_fields.items() if _mentions_secret(field.annotation)
    }


def _mentions_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_mentions_secret(arg) for arg in get_args(annotation))


SECTIONS: dict[str, type[BaseModel]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Settings.model_fields.items()
}
