"""What the ledger holds for one QuickBooks company, and how healthy it is.

`TokenSet` is the ``credentials`` row's data (ISO timestamps, so it is plain JSON);
tokens never appear in its repr. `token_health` is what ``billsync auth quickbooks
--status`` reports: expiries, the refresh token's age, and Intuit's 5-year limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "FIVE_YEARS",
    "WARN_AHEAD",
    "TokenHealth",
    "TokenSet",
    "credential_name",
    "token_health",
]

FIVE_YEARS = timedelta(days=5 * 365 + 1)  # Intuit's refresh-token cap from first connection
WARN_AHEAD = timedelta(days=30)


def credential_name(realm_id: str) -> str:
    return f"quickbooks:{realm_id}"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)).astimezone(UTC) if value else None


@dataclass(frozen=True)
class TokenSet:
    """What the ledger holds for one company. Tokens never appear in repr."""

    refresh_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    access_expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    refresh_issued_at: datetime | None = None
    connected_at: datetime | None = None

    def access_valid(self, now: datetime, margin: timedelta) -> bool:
        return bool(
            self.access_token
            and self.access_expires_at is not None
            and now + margin < self.access_expires_at
        )

    def to_data(self) -> dict[str, Any]:
        return {
            "refresh_token": self.refresh_token,
            "access_token": self.access_token,
            "access_expires_at": _iso(self.access_expires_at),
            "refresh_expires_at": _iso(self.refresh_expires_at),
            "refresh_issued_at": _iso(self.refresh_issued_at),
            "connected_at": _iso(self.connected_at),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> TokenSet:
        return cls(
            refresh_token=str(data["refresh_token"]),
            access_token=str(data["access_token"]) if data.get("access_token") else None,
            access_expires_at=_moment(data.get("access_expires_at")),
            refresh_expires_at=_moment(data.get("refresh_expires_at")),
            refresh_issued_at=_moment(data.get("refresh_issued_at")),
            connected_at=_moment(data.get("connected_at")),
        )


@dataclass(frozen=True)
class TokenHealth:
    """What `billsync auth quickbooks --status` (and later `billsync status`) reports."""

    access_expires_at: datetime | None
    access_valid: bool
    refresh_issued_at: datetime | None
    refresh_age: timedelta | None
    refresh_expires_at: datetime | None
    connected_at: datetime | None
    reconnect_by: datetime | None  # the 5-year cap, counted from the first connection
    warnings: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return not self.warnings


def token_health(tokens: TokenSet, now: datetime) -> TokenHealth:
    """Warnings 30 days ahead of the refresh token's expiry and of the 5-year cap.

    The refresh token's own expiry (``x_refresh_token_expires_in``, ~100 days) rolls
    forward with every refresh, so it only nears when billsync has not run for months.
    The 5-year cap does not roll: only a new authorization (``billsync auth
    quickbooks``) restarts it. It is counted from the first connection billsync saw.
    """
    warnings: list[str] = []
    expires = tokens.refresh_expires_at
    if expires is not None and expires <= now:
        warnings.append("the refresh token has expired: run `billsync auth quickbooks`")
    elif expires is not None and expires - now <= WARN_AHEAD:
        warnings.append(
            f"the refresh token expires {expires:%Y-%m-%d}; a sync run before then renews it"
        )
    reconnect_by = tokens.connected_at + FIVE_YEARS if tokens.connected_at else None
    if reconnect_by is not None and reconnect_by <= now:
        warnings.append("the 5-year limit of this connection has passed: reconnect now")
    elif reconnect_by is not None and reconnect_by - now <= WARN_AHEAD:
        warnings.append(
            f"Intuit's 5-year limit ends this connection on {reconnect_by:%Y-%m-%d}: "
            "run `billsync auth quickbooks` before then"
        )
    return TokenHealth(
        access_expires_at=tokens.access_expires_at,
        access_valid=tokens.access_valid(now, timedelta(0)),
        refresh_issued_at=tokens.refresh_issued_at,
        refresh_age=now - tokens.refresh_issued_at if tokens.refresh_issued_at else None,
        refresh_expires_at=expires,
        connected_at=tokens.connected_at,
        reconnect_by=reconnect_by,
        warnings=tuple(warnings),
    )
