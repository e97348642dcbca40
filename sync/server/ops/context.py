"""What the ops pages and API need from the server, in one explicit object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr

from sync.ledger import Ledger

OFF_SENTENCE = (
    "The ops pages and API are off: set ops.token in the configuration (or put the token "
    "in a file named by BILLSYNC_OPS__TOKEN_FILE) and restart billsync serve to turn them on."
)


@dataclass(frozen=True)
class OpsContext:
    ledger: Ledger
    token: SecretStr | None
    """None turns /ops and /api off: they answer 404 with ``OFF_SENTENCE``."""
    clock: Callable[[], datetime]
    source: str = "salesforce"
    """The deal source's connector name (a write-back failure happened there)."""
    secure_cookie: bool | None = None
    """Mark the session cookie Secure: True/False, or None to follow the request's
    scheme (https directly, or X-Forwarded-Proto from a trusted proxy)."""
