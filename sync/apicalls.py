"""Count the vendor API calls a command makes, per system, for the run summary.

Every connector talks HTTP through `requests` (simple-salesforce, python-quickbooks,
intuit-oauth and stripe-python's RequestsClient all do), so one wrapper around
`requests.Session.send`, installed for the duration of a command, sees every call
whatever library made it. Calls are attributed by host: the hosts the configuration
points at (sandbox or real), then the vendors' public hosts.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests

from config.settings import Settings

VENDOR_SUFFIXES = (
    (".salesforce.com", "salesforce"),
    (".force.com", "salesforce"),
    (".intuit.com", "quickbooks"),
    ("api.stripe.com", "stripe"),
)


def hosts_from_settings(settings: Settings) -> dict[str, str]:
    hosts: dict[str, str] = {}
    urls = {
        "salesforce": (settings.salesforce.instance_url, settings.salesforce.login_url),
        "quickbooks": (settings.quickbooks.base_url, settings.quickbooks.discovery_url),
        "stripe": (settings.stripe.base_url,),
    }
    for system, candidates in urls.items():
        for url in candidates:
            if url:
                hosts[urlsplit(url).netloc.lower()] = system
    return hosts


def system_for(host: str, hosts: Mapping[str, str]) -> str:
    if host in hosts:
        return hosts[host]
    bare = host.split(":", 1)[0]
    for suffix, system in VENDOR_SUFFIXES:
        if bare.endswith(suffix):
            return system
    return "other"


@contextmanager
def counting_api_calls(hosts: Mapping[str, str]) -> Iterator[Counter[str]]:
    """Count `requests` calls per system while the block runs (one command at a time)."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    original = requests.Session.send

    def send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        system = system_for(urlsplit(request.url or "").netloc.lower(), hosts)
        with lock:
            counts[system] += 1
        return original(self, request, **kwargs)

    requests.Session.send = send  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        requests.Session.send = original  # type: ignore[method-assign]
