"""What the ops pages and API need from the server, in one explicit object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import SecretStr

from billsync.sync.ledger import Ledger
from billsync.sync.ops.connections import Connections, installed
from billsync.sync.server.ops.signing import Signer
from billsync.sync.server.ops.throttle import LoginThrottle

OFF_SENTENCE = (
    "The ops pages and API are off: set ops.token in the configuration (or put the token "
    "in a file named by BILLSYNC_OPS__TOKEN_FILE) and restart billsync serve to turn them on."
)
DEFAULT_IDLE = timedelta(minutes=30)


def _ignore(reason: str) -> None:
    """The default refusal observer: nothing counts refusals."""


@dataclass(frozen=True)
class OpsContext:
    ledger: Ledger
    token: SecretStr | None
    """None turns /ops and /api off: they answer 404 with ``OFF_SENTENCE``."""
    clock: Callable[[], datetime]
    source: str = ""
    """The deal source's connection (a write-back failure happened there); empty: the
    one of ``connections``, else the installed deal source."""
    connections: Connections | None = None
    """The configured connections (`billsync.sync.ops.connections.from_settings`); None:
    each installed connector is the one connection named after its kind."""
    secure_cookie: bool | None = None
    """Mark the session cookie Secure: True/False, or None to follow the request's
    scheme (https directly, or X-Forwarded-Proto from a trusted proxy)."""
    signer: Signer = field(default_factory=Signer.random)
    """Signs the login form, CSRF tokens and flash messages; `create_app` passes the
    ledger's key (`signing.ledger_signer`) so every worker signs alike."""
    session_idle: timedelta = DEFAULT_IDLE
    """A session not seen for this long has ended (``ops.session_idle_minutes``)."""
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    on_login_refused: Callable[[str], None] = _ignore
    """Told the `throttle.Refusal` of every refused token (the /metrics counter)."""

    def known(self) -> Connections:
        """The connections the pages and the API show, group and filter by."""
        if self.connections is not None:
            return self.connections
        return installed(self.source or None)
