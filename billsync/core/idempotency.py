"""Deterministic idempotency keys: one per intended write, the same on every retry.

The key names the deal, the target and the deal's revision (the source's stamp), so a
crash-and-retry reuses it while a changed deal gets a new one. Connectors derive their
vendor's form from it (a vendor may cap a request id's length).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

_NAMESPACE = uuid.UUID("7b0f5d2e-3c1a-4e8b-9a51-5b2d6c9e0f11")


def invoice_key(deal_id: str, target: str, revision: datetime) -> str:
    if revision.tzinfo is None:
        raise ValueError("revision must be timezone-aware")
    stamp = revision.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"billsync:{target}:{deal_id}:{stamp}"


def short_key(key: str, step: str = "") -> str:
    """A 36-character UUID5 of `key` (and a step name), for vendors with short limits."""
    return str(uuid.uuid5(_NAMESPACE, f"{key}|{step}"))
