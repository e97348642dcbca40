"""What `billsync status` says about a Ledgerly connection: its stored session and when
its API key expires (`ConnectorSpec.credential_health`).

Read from the ledger row the client keeps (``ledgerly:<connection>``), without a call to
Ledgerly; only times leave the row, never the token.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from billsync.core.plugins import CredentialHealth, CredentialReport, StoredCredential
from billsync_ledgerly.client import CREDENTIAL_PREFIX

__all__ = ["HEALTH", "report"]

# Ledgerly keys live 90 days and a request with an expired key is refused: billing
# stops. Two weeks is time enough to make and roll out a new one.
KEY_WARNING = timedelta(days=14)


def report(row: StoredCredential, now: datetime) -> CredentialReport:
    connection = row.name.removeprefix(CREDENTIAL_PREFIX)
    session_until = _time(row.data.get("expires_at"))
    key_until = _time(row.data.get("key_expires_at"))
    session_ok = session_until is not None and session_until > now
    parts = [
        f"session valid {'yes' if session_ok else 'no'}"
        + (f" (until {session_until.isoformat()})" if session_until else "")
    ]
    warnings: list[str] = []
    days_left = None
    if key_until is not None:
        days_left = (key_until - now).days
        parts.append(f"API key expires {key_until.date().isoformat()} ({days_left} days)")
        if key_until <= now:
            warnings.append(
                f"the API key of connection {connection} has expired: create a new key in "
                "Ledgerly → Settings → API and set the connection's api_key"
            )
        elif key_until - now <= KEY_WARNING:
            warnings.append(
                f"the API key of connection {connection} expires in {days_left} days: create "
                "a new key in Ledgerly → Settings → API and set the connection's api_key"
            )
    return CredentialReport(
        account=connection,
        facts={
            "connection": connection,
            "session_valid": session_ok,
            "session_expires_at": session_until.isoformat() if session_until else None,
            "api_key_expires_at": key_until.isoformat() if key_until else None,
            "api_key_days_left": days_left,
        },
        summary="; ".join(parts),
        warnings=tuple(warnings),
    )


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


HEALTH = CredentialHealth(prefix=CREDENTIAL_PREFIX, report=report)
