"""Intuit OAuth tokens that never strand the connection.

Intuit rotates the refresh token on every refresh. The rule kept here: the rotated
refresh token (with its expiry, and the new access token) is saved to the ledger —
compare-and-swap, committed — BEFORE the new access token is used for anything. One
process refreshes at a time (the ledger lease behind ``CredentialStore.hold``); the
others wait, reload and reuse what it stored. A refresh whose save loses the race is
thrown away in favour of the stored winner.

Why a crash between the token response and the save does not strand us: the only
unsaved token is one that was never used. Intuit keeps the previous refresh token valid
until its successor is first used (the sandbox models this with
``refresh_grace_s: null``; its default is a 60 s grace), so the next run refreshes with
the stored, superseded token and gets a fresh pair. Saving first is what makes that
true: had the new access token been used before the save, the stored token could
already be dead when the save is lost.

``invalid_grant`` means the grant is gone (revoked, expired, or superseded by a token
we no longer have): the manager remembers the error and fails fast for the rest of the
run — no second request to Intuit — with instructions to reconnect.

The token endpoint itself is reached through `oauth.AuthGateway` (intuitlib), built
only when a refresh is due; what is stored is a `tokens.TokenSet`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from billsync.connectors.quickbooks.errors import SYSTEM, auth_command
from billsync.connectors.quickbooks.oauth import AuthGateway
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.connectors.quickbooks.tokens import (
    FIVE_YEARS,
    WARN_AHEAD,
    TokenHealth,
    TokenSet,
    credential_name,
    token_health,
)
from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, CredentialStore, ErrorClass

__all__ = [
    "FIVE_YEARS",
    "WARN_AHEAD",
    "AuthGateway",
    "TokenHealth",
    "TokenManager",
    "TokenSet",
    "credential_name",
    "token_health",
]

log = get_logger("billsync.quickbooks.auth")
Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
_LEASE_TTL = timedelta(seconds=60)
_POLL_S = 0.5


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TokenManager:
    """The access token for API calls, refreshed through the ledger as described above."""

    def __init__(
        self,
        settings: QuickBooksSettings,
        store: CredentialStore,
        *,
        gateway: AuthGateway | None = None,
        clock: Clock = _utcnow,
        sleep: Sleep = time.sleep,
        connection: str = SYSTEM,
    ) -> None:
        self._connect_with = auth_command(connection)
        if not settings.realm_id:
            raise ConnectorError(
                system=SYSTEM,
                error_class=ErrorClass.AUTH,
                message="set quickbooks.realm_id (shown by `billsync auth quickbooks`)",
                code="CONFIG",
            )
        self.settings = settings
        self.name = credential_name(settings.realm_id)
        self.store = store
        self.gateway = gateway or AuthGateway(settings, clock=clock)
        self.clock = clock
        self.sleep = sleep
        self.margin = timedelta(seconds=settings.token_refresh_margin_s)
        self._lock = threading.Lock()
        self._tokens: TokenSet | None = None
        self._dead: ConnectorError | None = None
        self.refreshes = 0  # refreshes this process performed (for logs and tests)

    def access_token(self) -> str:
        """A usable access token, refreshing proactively shortly before expiry."""
        if self._dead is not None:
            raise self._dead
        tokens = self._tokens
        if tokens is not None and tokens.access_valid(self.clock(), self.margin):
            return str(tokens.access_token)
        return self._obtain(stale=None)

    def refresh_after_401(self, rejected: str) -> str:
        """QuickBooks refused ``rejected``: get a different token (refresh at most once
        per rejected token, however many threads saw the 401)."""
        if self._dead is not None:
            raise self._dead
        return self._obtain(stale=rejected)

    def _obtain(self, stale: str | None) -> str:
        with self._lock:
            if self._dead is not None:
                raise self._dead
            tokens = self._tokens
            if tokens is not None and self._usable(tokens, stale):
                return str(tokens.access_token)
            try:
                tokens = self._from_ledger(stale)
            except ConnectorError as exc:
                if exc.error_class is ErrorClass.AUTH:
                    self._dead = exc  # stop for this run: no hammering
                raise
            self._tokens = tokens
            return str(tokens.access_token)

    def _usable(self, tokens: TokenSet, stale: str | None) -> bool:
        return tokens.access_valid(self.clock(), self.margin) and tokens.access_token != stale

    def _from_ledger(self, stale: str | None) -> TokenSet:
        deadline = self.clock() + timedelta(seconds=self.settings.refresh_wait_s)
        while True:
            tokens, _ = self._load()
            if self._usable(tokens, stale):
                return tokens  # another process refreshed: reuse its token
            with self.store.hold(self.name, _LEASE_TTL) as held:
                refreshed = self._refresh_holding_lease(stale) if held else None
            if refreshed is not None:
                return refreshed
            if self.clock() >= deadline:
                raise ConnectorError(
                    system=SYSTEM,
                    error_class=ErrorClass.TRANSIENT,
                    message="another billsync process holds the QuickBooks token refresh "
                    "lease and has not stored a new token; retried next run",
                    code="REFRESH_BUSY",
                )
            if not held:
                self.sleep(_POLL_S)
            # held but nothing usable: the save lost a race (lease expired?): reload

    def _refresh_holding_lease(self, stale: str | None) -> TokenSet | None:
        tokens, version = self._load()  # again: a holder before us may have just saved
        if self._usable(tokens, stale):
            return tokens
        try:
            fresh = self.gateway.refresh(tokens)
        except ConnectorError as exc:
            if exc.code == "invalid_grant":
                latest, _ = self._load()
                if latest.refresh_token != tokens.refresh_token:
                    return None  # rotated meanwhile by someone else: use theirs
                log.error("quickbooks.invalid_grant", realm=self.settings.realm_id)
            raise
        self.refreshes += 1
        # Save (committed) before anyone uses the new access token.
        if self.store.save(self.name, fresh.to_data(), version):
            log.info("quickbooks.token_refreshed", realm=self.settings.realm_id)
            return fresh
        log.warning("quickbooks.token_save_lost_race", realm=self.settings.realm_id)
        return None

    def _load(self) -> tuple[TokenSet, int]:
        loaded = self.store.load(self.name)
        if loaded is None:
            self._bootstrap()
            loaded = self.store.load(self.name)
        if loaded is None:
            raise ConnectorError(
                system=SYSTEM,
                error_class=ErrorClass.AUTH,
                message=f"QuickBooks company {self.settings.realm_id} is not connected; "
                f"run {self._connect_with}",
                code="NOT_CONNECTED",
            )
        data, version = loaded
        return TokenSet.from_data(data), version

    def _bootstrap(self) -> None:
        """First run of an automated set-up: store the configured refresh token."""
        configured = self.settings.refresh_token
        if configured is None or not configured.get_secret_value():
            return
        seed = TokenSet(refresh_token=configured.get_secret_value(), connected_at=self.clock())
        if self.store.save(self.name, seed.to_data(), None):
            log.info("quickbooks.token_bootstrapped", realm=self.settings.realm_id)

    def stored(self) -> TokenSet | None:
        """What the ledger holds now (no network), for status reports."""
        loaded = self.store.load(self.name)
        return None if loaded is None else TokenSet.from_data(loaded[0])

    def adopt(self, tokens: TokenSet) -> None:
        """Use ``tokens`` (already stored) without reloading, e.g. after `auth`."""
        with self._lock:
            self._tokens = tokens
