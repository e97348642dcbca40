"""The QuickBooks part of `billsync status`: each connected company's token health,
read from the ledger alone (`ConnectorSpec.credential_health`).

Only times derived from the stored tokens leave here, never a token: access-token
expiry, the refresh token's age and expiry (Intuit refresh tokens live 100 days,
rolling) and the 5-year reconnect limit.
"""

from __future__ import annotations

from datetime import UTC, datetime

from billsync.connectors.quickbooks.tokens import TokenSet, token_health
from billsync.core.plugins import CredentialHealth, CredentialReport, StoredCredential

__all__ = ["HEALTH", "PREFIX", "company_report"]

PREFIX = "quickbooks:"  # tokens.credential_name(realm_id)
UNREADABLE = "stored tokens unreadable"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def company_report(stored: StoredCredential, now: datetime) -> CredentialReport:
    """Expiry times and warnings of one company's tokens; the tokens stay unread."""
    realm = stored.name.removeprefix(PREFIX)
    try:
        health = token_health(TokenSet.from_data(stored.data), now)
    except (KeyError, ValueError, TypeError):
        facts = {"realm_id": realm, "readable": False}
        return CredentialReport(realm, facts, UNREADABLE, (UNREADABLE,))
    age_days = health.refresh_age.days if health.refresh_age else None
    facts = {
        "realm_id": realm,
        "readable": True,
        "access_token_expires_at": _iso(health.access_expires_at),
        "access_token_valid": health.access_valid,
        "refresh_token_issued_at": _iso(health.refresh_issued_at),
        "refresh_token_age_days": age_days,
        "refresh_token_expires_at": _iso(health.refresh_expires_at),
        "connected_at": _iso(health.connected_at),
        "reconnect_by": _iso(health.reconnect_by),
        "stored_at": _iso(stored.updated_at),
    }
    summary = (
        f"access token valid {'yes' if health.access_valid else 'no'} (until "
        f"{facts['access_token_expires_at'] or '-'}); refresh token "
        f"{'-' if age_days is None else age_days} days old, expires "
        f"{facts['refresh_token_expires_at'] or '-'}; reconnect by {facts['reconnect_by'] or '-'}"
    )
    return CredentialReport(realm, facts, summary, health.warnings)


HEALTH = CredentialHealth(prefix=PREFIX, report=company_report)
