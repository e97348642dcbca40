"""The ``salesforce:`` section of the configuration: the Salesforce org deals come from.

Declared in the connector's plug-in spec (`plugin.SPEC`); `billsync.config` validates
it, reads it from the YAML file, ``BILLSYNC_SALESFORCE__<KEY>`` and ``_FILE`` secrets, and
masks and scrubs its secrets like every other section's.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from billsync.core.settings import SourceSection

__all__ = ["CREDENTIAL_SHAPES", "SalesforceSettings"]

# Shapes of its credentials, scrubbed from every log line (ConnectorSpec.secret_patterns):
# session ids are the org id (00D...), "!" and the token.
CREDENTIAL_SHAPES = (r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{20,}",)


class SalesforceSettings(SourceSection):
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
