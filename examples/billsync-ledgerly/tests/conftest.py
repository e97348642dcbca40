"""Fixtures: the fake Ledgerly API (one server for the session, fresh state per test) and
an in-memory credential store standing in for the ledger's."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any

import pytest
from fake_ledgerly import FakeLedgerly, running


class MemoryCredentials:
    """`billsync.core.protocols.CredentialStore` in a dict: compare-and-swap by version."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[dict[str, Any], int]] = {}

    def load(self, name: str) -> tuple[Mapping[str, Any], int] | None:
        return self.rows.get(name)

    def save(self, name: str, data: Mapping[str, Any], expected_version: int | None) -> bool:
        current = self.rows.get(name)
        if (current[1] if current else None) != expected_version:
            return False
        self.rows[name] = (dict(data), (expected_version or 0) + 1)
        return True

    def hold(self, name: str, ttl: timedelta) -> AbstractContextManager[bool]:
        return nullcontext(True)


@pytest.fixture(scope="session")
def served() -> Iterator[FakeLedgerly]:
    with running(FakeLedgerly()) as fake:
        yield fake


@pytest.fixture
def fake(served: FakeLedgerly) -> Iterator[FakeLedgerly]:
    served.reset()
    yield served
    assert served.unexpected == [], "the connector made requests Ledgerly does not serve"
