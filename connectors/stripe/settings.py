"""The ``stripe:`` section of the configuration: one Stripe account.

Declared in the connector's plug-in spec (`plugin.SPEC`); `billsync.config` validates
it, reads it from the YAML file, ``BILLSYNC_STRIPE__<KEY>`` and ``_FILE`` secrets, and
masks and scrubs its secrets like every other section's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from billsync.core.settings import ConnectorSection

__all__ = ["CREDENTIAL_SHAPES", "StripeSettings"]

# Shapes of its credentials, scrubbed from every log line (ConnectorSpec.secret_patterns).
CREDENTIAL_SHAPES = (
    r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{6,}",  # API keys
    r"\bwhsec_[A-Za-z0-9+/=]{6,}",  # webhook signing secrets
)


class StripeSettings(ConnectorSection):
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
