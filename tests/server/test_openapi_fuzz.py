"""schemathesis against the live server's own OpenAPI document: generated requests
(valid and invalid bodies, headers, methods) never get a 5xx and every response
matches what the document promises (status, content type, body schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from sync.server.app import create_app
from sync.server.metrics import Metrics
from tests.engine.fakes import Clock, FakeFeed, FakeSource
from tests.server.live import serving
from tests.server.test_webhook_receiver import World


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    db = create_ledger_engine(f"sqlite:///{tmp / 'ledger.db'}")
    upgrade_to_head(db)
    ledger = Ledger(db)
    feeds = {"stripe": FakeFeed("stripe"), "quickbooks": FakeFeed("quickbooks")}
    world = World(ledger, Clock(), FakeSource([]), feeds, Metrics(ledger), tmp)
    with serving(create_app(world.parts())) as url:
        yield url
    db.dispose()


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


OPERATIONS = [
    ("POST", "/webhooks/stripe"),
    ("POST", "/webhooks/quickbooks"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]


def test_the_document_lists_every_operation(api_schema: schemathesis.BaseSchema) -> None:
    documented = {
        (result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()
    }
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_server_errors_and_responses_match_the_document(
    api_schema: schemathesis.BaseSchema, method: str, path: str
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: schemathesis.Case) -> None:
        # A schema-valid webhook still needs an HMAC the schema cannot express, so
        # "valid data accepted" does not apply there; every other check does.
        excluded = [positive_data_acceptance] if path.startswith("/webhooks/") else []
        case.call_and_validate(timeout=10, excluded_checks=excluded)

    check()
