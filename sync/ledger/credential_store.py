"""`LedgerCredentialStore`: the connectors' `CredentialStore` over the ledger.

Rotating OAuth tokens live in the ledger's ``credentials`` table (compare-and-swap on a
version, committed before returning) and the refresher lease is an ordinary ledger
lease named ``credentials:<name>``, so one process refreshes at a time even when
several workers share a PostgreSQL ledger.

``holder`` names this process in the lease table (e.g. ``host:pid``); it must differ
between processes. Threads of one process share the holder, and the ledger lets a
holder re-take its own lease, so ``hold`` also takes a per-name lock inside the
process: a second thread is told False (wait and reload) exactly like a second process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from billsync.sync.ledger.repository import Ledger

__all__ = ["LedgerCredentialStore", "lease_name"]


def lease_name(name: str) -> str:
    return f"credentials:{name}"


class LedgerCredentialStore:
    """Implements ``billsync.core.protocols.CredentialStore``."""

    def __init__(self, ledger: Ledger, holder: str) -> None:
        if not holder:
            raise ValueError("holder must name this process")
        self.ledger = ledger
        self.holder = holder
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def __repr__(self) -> str:
        return f"LedgerCredentialStore(holder={self.holder!r})"

    def load(self, name: str) -> tuple[Mapping[str, Any], int] | None:
        stored = self.ledger.load_credentials(name)
        return None if stored is None else (stored.data, stored.version)

    def save(self, name: str, data: Mapping[str, Any], expected_version: int | None) -> bool:
        return self.ledger.save_credentials(name, dict(data), expected_version)

    @contextmanager
    def hold(self, name: str, ttl: timedelta) -> Iterator[bool]:
        local = self._lock_for(name)
        if not local.acquire(blocking=False):
            yield False
            return
        try:
            held = self.ledger.acquire_lease(lease_name(name), self.holder, ttl) is not None
            try:
                yield held
            finally:
                if held:
                    # False when the lease expired and passed on: nothing of ours to free.
                    self.ledger.release_lease(lease_name(name), self.holder)
        finally:
            local.release()

    def _lock_for(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())
