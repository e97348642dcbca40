"""The ``quickbooks:`` section of the configuration: one QuickBooks Online company.

Declared in the connector's plug-in spec (`plugin.SPEC`); `billsync.config` validates
it, reads it from the YAML file, ``BILLSYNC_QUICKBOOKS__<KEY>`` and ``_FILE`` secrets, and
masks and scrubs its secrets like every other section's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, model_validator

from billsync.core.settings import ConnectorSection

__all__ = ["CREDENTIAL_SHAPES", "QuickBooksSettings"]

# Shapes of its credentials, scrubbed from every log line (ConnectorSpec.secret_patterns):
# Intuit refresh tokens (AB11 + 30 or more characters).
CREDENTIAL_SHAPES = (r"\bAB11[A-Za-z0-9]{30,}",)

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class QuickBooksSettings(ConnectorSection):
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
