"""Fixtures for the Stripe connector tests: one in-process sandbox for the session
(real Stripe system, the generated catalogue), reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.connectors.stripe.support import ConnectorEnv, stripe_connector_sandbox


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectorEnv]:
    with stripe_connector_sandbox(tmp_path_factory.mktemp("stripe-connector")) as env:
        yield env


@pytest.fixture
def env(sandbox: ConnectorEnv) -> ConnectorEnv:
    sandbox.fresh()
    return sandbox
