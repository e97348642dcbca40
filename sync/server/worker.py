"""The background worker of `billsync serve`: drains the webhook inbox with the
engine's payment stage, then writes the new money state back onto the deals.

The receiver only stores (a vendor wants an answer within seconds and may hold later
events behind a failed one), so everything slow happens here: fetching what a
notification only names, applying payments, the deal source's write-back. The worker
wakes when the receiver stored something and otherwise every ``poll_seconds``, so
events stored by another replica (or left by a previous process) are not forgotten.
"""

from __future__ import annotations

import threading
import time

from billsync.core.logs import get_logger
from billsync.sync.engine.cycle import Engine
from billsync.sync.engine.failures import FailureRecorder
from billsync.sync.engine.payments import PaymentStage
from billsync.sync.engine.summary import RunSummary
from billsync.sync.engine.writeback import WriteBackStage

log = get_logger("billsync.server")

POLL_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 60.0


class InboxWorker:
    """One thread per process. Claims are per holder and expire, so several replicas
    (or a `billsync run` draining the same inbox) share the work without doubles."""

    def __init__(
        self,
        engine: Engine,
        *,
        poll_seconds: float = POLL_SECONDS,  # money-ok: a duration
        write_back: bool = True,
    ) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.write_back = write_back
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_beat = 0.0  # monotonic time the loop last came round
        self.processed = 0
        self.last_error: str | None = None

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the inbox worker is already running")
        self._last_beat = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="billsync-inbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:  # money-ok: a duration
        """Finish the event in hand, give back the rest of the claimed batch, stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Called by the receiver after it stored an event."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        """Running and coming round its loop (a drain stuck for minutes is not alive)."""
        if self._thread is None or not self._thread.is_alive():
            return False
        limit = max(self.poll_seconds * 3, 120.0)
        return time.monotonic() - self._last_beat < limit

    # --- the loop ----------------------------------------------------------------

    def _loop(self) -> None:
        failures_in_a_row = 0
        while not self._stop.is_set():
            delay = self.poll_seconds
            if failures_in_a_row:
                delay = min(self.poll_seconds * 2**failures_in_a_row, MAX_BACKOFF_SECONDS)
            self._wake.wait(delay)
            self._wake.clear()
            self._last_beat = time.monotonic()
            if self._stop.is_set():
                break
            try:
                self.drain_once()
                failures_in_a_row = 0
                self.last_error = None
            except Exception as exc:  # the worker must outlive a bad moment of the ledger
                failures_in_a_row += 1
                self.last_error = type(exc).__name__
                log.exception("inbox.worker_error", error=type(exc).__name__)
            self._last_beat = time.monotonic()
        log.info("inbox.worker_stopped", processed=self.processed)

    def drain_once(self) -> int:
        """Process what the inbox holds now; returns how many events were claimed."""
        engine = self.engine
        summary = RunSummary(run_id=f"inbox:{engine.holder}")
        failures = FailureRecorder(
            engine.ledger,
            engine.policy,
            mapping_hash=engine.mapping.digest,
            run_id=summary.run_id,
            holder=engine.holder,
            now=engine.now,
        )
        stage = PaymentStage(
            engine.ledger, engine.feeds, failures, summary, engine.holder, engine.now
        )
        claimed = stage.drain_inbox(stopping=self._stop.is_set)
        self.processed += claimed
        if claimed:
            log.info(
                "inbox.drained",
                events=claimed,
                payments_applied=summary.payments_applied,
                discrepancies=summary.discrepancies,
            )
        if self.write_back and summary.payments_applied and not self._stop.is_set():
            WriteBackStage(
                engine.ledger, engine.source, failures, summary, engine.holder, engine.now
            ).run()
        return claimed
