"""What one run did, for `--json`, the runs table and the exit code."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.core.retrying import stops_connector

log = get_logger("billsync.engine")

EXIT_CLEAN = 0
EXIT_FAILURES = 1
EXIT_CONFIG = 2
EXIT_LEASE_HELD = 3
CONNECTOR_STOPPED = "CONNECTOR_STOPPED"
"""The code of the error given to work a stopped connector was never sent (not a new
refusal: it does not count as one more auth failure)."""


@dataclass
class RunSummary:
    run_id: str
    deals_seen: int = 0
    invoices_created: int = 0
    invoices_adopted: int = 0
    failures: int = 0
    needs_attention: int = 0
    payments_applied: int = 0
    writebacks: int = 0
    discrepancies: int = 0
    retried: int = 0
    api_calls: dict[str, int] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    """Connectors stopped for this run (auth failure, quota floor) and why."""
    auth_failed: set[str] = field(default_factory=set)
    """Connectors whose credentials were refused: the run exits 2 (reconnect or fix the
    key), whatever else it did."""
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    duration_s: float = 0.0

    def count(self, name: str, n: int = 1) -> None:
        """Add to a counter; safe from the per-target invoice workers."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def connector_stopped(self, system: str, error: ConnectorError, *, stage: str) -> None:
        """The one place a connector stops for the rest of the run (refused credentials,
        a failed pull, the source's quota floor); logged once per connector."""
        with self._lock:
            first = system not in self.stopped
            self.stopped.setdefault(system, error.message)
            if error.error_class == ErrorClass.AUTH and error.code != CONNECTOR_STOPPED:
                self.auth_failed.add(system)
        if first:
            log.error(
                "connector.stopped",
                target=system,
                stage=stage,
                error_class=str(error.error_class),
                code=error.code,
                message=error.message,
            )

    def stop_if_refused(self, system: str, error: ConnectorError, *, stage: str) -> bool:
        """Stop ``system`` when ``error`` is one that stops a connector (the one rule,
        `stops_connector`); True when it did."""
        if not stops_connector(error):
            return False
        self.connector_stopped(system, error, stage=stage)
        return True

    def finish(self) -> None:
        self.duration_s = round(time.monotonic() - self.started, 3)

    @property
    def exit_code(self) -> int:
        if self.auth_failed:
            # Wrong or revoked credentials for any connector: the operator must act
            # (fix the key, reconnect) even when the other connectors worked.
            return EXIT_CONFIG
        if self.failures or self.needs_attention or self.stopped:
            return EXIT_FAILURES
        return EXIT_CLEAN

    @property
    def outcome(self) -> str:
        return "clean" if self.exit_code == EXIT_CLEAN else "failures"

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "deals_seen": self.deals_seen,
            "invoices_created": self.invoices_created,
            "invoices_adopted": self.invoices_adopted,
            "failures": self.failures + self.needs_attention,
            "needs_attention": self.needs_attention,
            "payments_applied": self.payments_applied,
            "writebacks": self.writebacks,
            "discrepancies": self.discrepancies,
            "retried": self.retried,
            "stopped": self.stopped,
            "api_calls": self.api_calls,
            "duration_s": self.duration_s,
        }
