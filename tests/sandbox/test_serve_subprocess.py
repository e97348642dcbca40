"""`billsync sandbox serve` as a real process: ready file, config-out, all three SDKs."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import stripe
from simple_salesforce import Salesforce

from billsync.config.loader import load_settings
from billsync.sandbox import jsonutil
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.launcher import SandboxHandle, running_sandbox

READY_KEYS = {
    "admin_url", "salesforce_url", "quickbooks_url", "stripe_url", "token_url", "ca_bundle",
    "stripe_webhook_secret", "quickbooks_verifier_token",
}  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> SandboxHandle:
    workdir = tmp_path_factory.mktemp("served")
    seed = workdir / "seed.json"
    seed.write_text(jsonutil.dumps(generate_seed(GenerateOptions(deals=200, random_seed=2))))
    with running_sandbox(workdir, seed_file=seed) as handle:
        yield handle  # type: ignore[misc]


def test_ready_file_has_every_field(served: SandboxHandle) -> None:
    assert set(served.info) >= READY_KEYS
    assert served.info["salesforce_url"].startswith("https://")
    assert Path(served.info["ca_bundle"]).exists()


def test_config_out_is_a_valid_billsync_config(served: SandboxHandle) -> None:
    settings = load_settings(served.config_path, environ={})
    assert settings.salesforce.instance_url == served.info["salesforce_url"]
    assert settings.stripe.base_url == served.info["stripe_url"]
    assert settings.quickbooks.realm_id
    assert (
        settings.stripe.webhook_secrets[0].get_secret_value()
        == (served.info["stripe_webhook_secret"])
    )


def test_simple_salesforce_counts_won_deals(served: SandboxHandle) -> None:
    info = served.info
    token = requests.post(
        info["salesforce_token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": info["salesforce_client_id"],
            "client_secret": info["salesforce_client_secret"],
        },
        verify=info["ca_bundle"],
        timeout=10,
    ).json()["access_token"]
    session = requests.Session()
    session.verify = info["ca_bundle"]
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify
    sf = Salesforce(
        instance_url=info["salesforce_url"], session_id=token, version="66.0", session=session
    )
    won = sf.query("SELECT COUNT() FROM Opportunity WHERE IsWon = true")["totalSize"]
    deals = served.state()["salesforce"]["Opportunity"]
    assert won == sum(1 for d in deals if d["StageName"] == "Closed Won")
    assert served.calls()["totals"]["salesforce"] >= 1


def test_stripe_sdk_sees_the_seeded_catalogue(served: SandboxHandle) -> None:
    client = stripe.StripeClient(
        served.info["stripe_api_key"], base_addresses={"api": served.info["stripe_url"]}
    )
    prices = client.v1.prices.list(params={"lookup_keys": ["PLAT-SUB-JPY"]})
    assert [p.unit_amount for p in prices.data] == [1812000]


def test_state_is_exact_json(served: SandboxHandle) -> None:
    response = requests.get(f"{served.admin_url}/_sandbox/state", timeout=10)
    assert response.status_code == 200
    state = jsonutil.loads(response.text)
    assert set(state) == {"salesforce", "quickbooks", "stripe"}
    assert len(state["salesforce"]["Opportunity"]) == 200
