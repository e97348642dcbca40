"""schemathesis against the live server's own OpenAPI document: generated requests
(valid and invalid bodies, headers, methods) never get a 5xx and every response
matches what the document promises (status, content type, body schema)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis.checks import positive_data_acceptance

from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from billsync.sync.server.app import create_app
from billsync.sync.server.metrics import Metrics
from tests.engine.fakes import Clock, FakeFeed, FakeSource
from tests.ops.ar_fixture import build_book
from tests.ops.test_failures_cli import seed_failures
from tests.server.live import serving
from tests.server.test_webhook_receiver import World

OPS_TOKEN = "fuzz-ops-token-5b1f0c9e-7a2d4c6e8f0b1d3a"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    db = create_ledger_engine(f"sqlite:///{tmp / 'ledger.db'}")
    upgrade_to_head(db)
    ledger = Ledger(db)
    feeds = {"stripe": FakeFeed("stripe"), "quickbooks": FakeFeed("quickbooks")}
    world = World(ledger, Clock(), FakeSource([]), feeds, Metrics(ledger), tmp)
    # Real rows behind the ops API, so its responses are checked with content in them.
    seed_failures(ledger)
    build_book(ledger)
    parts = dataclasses.replace(world.parts(), ops_token=SecretStr(OPS_TOKEN))
    with serving(create_app(parts)) as url:
        yield url
    db.dispose()


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


OPERATIONS = [
    ("POST", "/webhooks/{name}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/failures"),
    ("GET", "/api/failures/{item_id}"),
    ("POST", "/api/failures/retry"),
    ("POST", "/api/failures/{item_id}/retry"),
    ("POST", "/api/failures/{item_id}/resolve"),
    ("POST", "/api/discrepancies/{item_id}/acknowledge"),
    ("POST", "/api/discrepancies/{item_id}/resolve"),
    ("GET", "/api/discrepancies"),
    ("GET", "/api/status"),
    ("GET", "/api/reports/aging"),
    ("GET", "/api/reports/kpis"),
]


def test_the_document_lists_every_operation(api_schema: schemathesis.BaseSchema) -> None:
    documented = {
        (result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()
    }
    assert documented == set(OPERATIONS)


# The webhook route once with generated names (nearly all unknown: 404), and once per
# configured connection, so generated headers and bodies reach the real verifiers.
CASES = [(method, path, None) for method, path in OPERATIONS] + [
    ("POST", "/webhooks/{name}", name) for name in ("stripe", "quickbooks")
]


@pytest.mark.parametrize(("method", "path", "name"), CASES)
def test_no_server_errors_and_responses_match_the_document(
    api_schema: schemathesis.BaseSchema, method: str, path: str, name: str | None
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: schemathesis.Case) -> None:
        if name is not None:
            case.path_parameters = {"name": name}
        # A schema-valid webhook still needs an HMAC the schema cannot express, so
        # "valid data accepted" does not apply there; every other check does.
        excluded = [positive_data_acceptance] if path.startswith("/webhooks/") else []
        # The ops API is called with the token; schemathesis also probes it without.
        auth = {"Authorization": f"Bearer {OPS_TOKEN}"} if path.startswith("/api/") else None
        case.call_and_validate(timeout=10, excluded_checks=excluded, headers=auth)

    check()
