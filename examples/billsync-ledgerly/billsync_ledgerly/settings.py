"""The ``ledgerly:`` settings section: one Ledgerly account.

billsync adds it to its configuration under the connector's name (and under
``connections.<name>`` with ``kind: ledgerly`` for a second account), so it is read from
YAML, ``BILLSYNC_LEDGERLY__<KEY>`` variables and ``_file`` secrets, validated at start-up,
masked by ``billsync config check`` and scrubbed from logs like the built-in sections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from billsync.core.settings import ConnectorSection

__all__ = ["CREDENTIAL_SHAPES", "LedgerlySettings"]

# Shapes of Ledgerly credentials (ConnectorSpec.secret_patterns), scrubbed from every log
# line even where they are not the configured ones (a token echoed in an error body).
CREDENTIAL_SHAPES = (
    r"\bly_(?:live|test)_[A-Za-z0-9]{16,}",  # API keys
    r"\blys_[A-Za-z0-9]{16,}",  # session tokens (POST /v1/sessions)
    r"\blywh_[A-Za-z0-9]{16,}",  # webhook signing secrets
)


class LedgerlySettings(ConnectorSection):
    api_key: SecretStr | None = None
    base_url: str = "https://api.ledgerly.example"
    # Several during a rotation: Ledgerly signs with the new secret as soon as it is
    # created, and billsync must accept both until the old one is deleted.
    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    # Zero is not allowed: a signature check without a time window accepts replays.
    webhook_tolerance_s: int = Field(default=300, ge=10, le=3600)
    ca_bundle: Path | None = None
    timeout_s: int = Field(default=30, ge=1, le=600)
    retry_attempts: int = Field(default=4, ge=1, le=10)

    @model_validator(mode="after")
    def _key_when_enabled(self) -> Self:
        if self.enabled:
            self._require_secrets("api_key")
        return self
