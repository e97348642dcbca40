"""Idempotency-Key semantics (api-facts §3.5, https://docs.stripe.com/idempotency).

The first request with a key saves its status and body, errors included once the
endpoint began executing; the same key with the same method, path and parameters gets
that saved answer back with `Idempotent-Replayed: true`; with anything else it gets an
`idempotency_error`. Keys expire 24 h after first use on the sandbox clock.

stripe-python sends a fresh random key with every POST, so the cache would grow with
every write: it keeps at most `max_entries` keys (oldest dropped first) and stores
bodies zlib-compressed.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

KEY_TTL_S = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Saved:
    fingerprint: str
    status: int
    body: bytes  # compressed
    headers: dict[str, str]
    request_id: str
    created: float

    def content(self) -> bytes:
        return zlib.decompress(self.body)


def fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    canonical = json.dumps([method, path, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyCache:
    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._saved: OrderedDict[str, Saved] = OrderedDict()

    def lookup(self, key: str, now: float) -> Saved | None:
        saved = self._saved.get(key)
        if saved is not None and now - saved.created >= KEY_TTL_S:
            del self._saved[key]  # purged: the key may be reused for a new request
            return None
        return saved

    def save(
        self,
        key: str,
        print_: str,
        status: int,
        body: bytes,
        headers: dict[str, str],
        request_id: str,
        now: float,
    ) -> None:
        self._saved[key] = Saved(print_, status, zlib.compress(body, 1), headers, request_id, now)
        while len(self._saved) > self.max_entries:
            self._saved.popitem(last=False)

    def clear(self) -> None:
        self._saved.clear()

    def __len__(self) -> int:
        return len(self._saved)
