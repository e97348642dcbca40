"""See every vendor API call a process makes, per system: counts and metrics.

Every connector talks HTTP through `requests` (the vendor SDKs the built-in connectors
use all do), so one wrapper around `requests.Session.send` sees every call whatever
library made it. Calls are attributed by host: the hosts the configuration points at
(sandbox or real), then the vendors' public hosts — both declared by each connector's
spec.

Two users, possibly at once in one process: a command counts its calls for the run
summary (`counting_api_calls`), and `billsync serve` feeds its Prometheus metrics for
its whole lifetime (`install_api_call_observer`) while a scheduled run counts inside
it. Each installing its own wrapper would break as soon as they are removed out of
order (removing the outer one first would drop the inner one, and the inner one's
exit would then reinstall a dead wrapper), so there is exactly one wrapper, installed
while at least one observer is registered, that reports each call to all of them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests

from billsync.config.settings import Settings
from billsync.core.logs import get_logger

log = get_logger("billsync.apicalls")

ERROR_STATUS = "error"
"""The status reported for a call that got no HTTP response (refused, reset, timeout)."""

ApiCallObserver = Callable[[str, str, float], None]
"""Called once per call with (system, status, seconds); status is the HTTP status code
as a string, or ``error`` when no response came back."""


def hosts_from_settings(settings: Settings) -> dict[str, str]:
    """Host -> connection name, from each connector's spec: the hosts a connection's
    section points at (sandbox or real) exactly, then each connector's public hosts as
    suffixes (keys starting with ``*``), named by its kind. A call from a session that
    names its connection (`billsync.core.http.VendorSession`) is counted by that name
    whatever its host: two companies of one kind share the vendor's host."""
    hosts: dict[str, str] = {}
    connections = settings.every_connection()
    for name, connection in connections.items():
        if name != connection.kind and not connection.section.enabled:
            continue
        for url in connection.spec.configured_urls(connection.section):
            if url:
                hosts.setdefault(urlsplit(url).netloc.lower(), name)
    for name, spec in settings.connector_specs.items():
        for suffix in spec.public_hosts:
            hosts.setdefault(f"*{suffix}", name)
    return hosts


def system_for(host: str, hosts: Mapping[str, str]) -> str:
    if host in hosts:
        return hosts[host]
    bare = host.split(":", 1)[0]
    for key, system in hosts.items():
        if key.startswith("*") and bare.endswith(key[1:]):
            return system
    return "other"


class _Tap:
    """The single wrapper around `requests.Session.send` and the observers it feeds.

    Module state on purpose: the thing it patches is process-wide, so the bookkeeping
    of who is listening has to be too. Observers are kept in an immutable tuple that
    is replaced under the lock, so calls in flight on other threads read a consistent
    set without taking the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._observers: tuple[tuple[Mapping[str, str], ApiCallObserver], ...] = ()
        self._original: Callable[..., Any] | None = None
        self._wrapper: Callable[..., Any] | None = None

    def add(self, hosts: Mapping[str, str], observer: ApiCallObserver) -> Callable[[], None]:
        entry = (dict(hosts), observer)
        with self._lock:
            if self._wrapper is None:
                self._install()
            self._observers = (*self._observers, entry)

        def remove() -> None:
            with self._lock:
                remaining = tuple(e for e in self._observers if e is not entry)
                if len(remaining) == len(self._observers):
                    return  # already removed: uninstalling twice is harmless
                self._observers = remaining
                original = self._original
                if remaining or original is None or requests.Session.send is not self._wrapper:
                    # Others still listen, or something patched `send` on top of ours
                    # since: leave the chain as it is (with nobody listening, the
                    # wrapper passes calls straight through).
                    return
                requests.Session.send = original  # type: ignore[method-assign]
                self._original = self._wrapper = None

        return remove

    def _install(self) -> None:
        original = requests.Session.send
        report = self._report

        def send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
            started = time.perf_counter()
            status = ERROR_STATUS
            try:
                response = original(self, request, **kwargs)
                status = str(response.status_code)
                return response
            finally:
                # With stream=True this is the time to the response headers.
                connection = getattr(self, "connection", None)
                report(request, connection, status, time.perf_counter() - started)

        self._original, self._wrapper = original, send
        requests.Session.send = send  # type: ignore[method-assign]

    def _report(
        self,
        request: requests.PreparedRequest,
        connection: str | None,
        status: str,
        seconds: float,
    ) -> None:
        observers = self._observers
        if not observers:
            return
        host = urlsplit(request.url or "").netloc.lower()
        for hosts, observer in observers:
            try:
                observer(connection or system_for(host, hosts), status, seconds)
            except Exception as exc:  # a broken observer must not fail a vendor call
                log.warning("api_calls.observer_failed", error=type(exc).__name__)


_TAP = _Tap()


def install_api_call_observer(
    hosts: Mapping[str, str], observer: ApiCallObserver
) -> Callable[[], None]:
    """Report every `requests` call in this process, from any thread, to ``observer``
    until the returned function is called. Observers can be installed and removed in
    any order; `requests.Session.send` is restored when the last one goes."""
    return _TAP.add(hosts, observer)


@contextmanager
def counting_api_calls(hosts: Mapping[str, str]) -> Iterator[Counter[str]]:
    """Count `requests` calls per system while the block runs (one command at a time)."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def count(system: str, status: str, seconds: float) -> None:
        with lock:
            counts[system] += 1

    uninstall = install_api_call_observer(hosts, count)
    try:
        yield counts
    finally:
        uninstall()
