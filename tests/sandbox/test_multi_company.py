"""The `multi` profile: two QuickBooks companies behind one Intuit app, two Stripe accounts.

Each company is its own world (keys, objects, idempotency keys, rate limits, webhook
routes, preferences, id sequences), as at the vendors; the app's Intuit notifications
share one URL and say by `realmId` which company changed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
import yaml
from starlette.requests import Request

from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sandbox.profiles import MULTI
from billsync.sandbox.runtime import RateLimiter
from tests.sandbox.harness import LoopThread, start_in_thread
from tests.sandbox.stripe_support import Receiver, receiver

SYSTEMS = {
    "quickbooks": "billsync.sandbox.quickbooks.system:QuickBooksSandbox",
    "stripe": "billsync.sandbox.stripe.system:StripeSandbox",
}
US_REALM, UK_REALM = (company.realm_id for company in MULTI.quickbooks)


@pytest.fixture(scope="module")
def hooks() -> Iterator[Receiver]:
    with receiver() as found:
        yield found


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory, hooks: Receiver) -> Iterator[LoopThread]:
    workdir = tmp_path_factory.mktemp("multi")
    with start_in_thread(workdir, systems=SYSTEMS, profile=MULTI, webhook_url=hooks.url) as runner:
        yield runner


def _stripe(runner: LoopThread, account: str) -> stripe.StripeClient:
    key = runner.info["stripe_accounts"][account]["api_key"]
    return stripe.StripeClient(key, base_addresses={"api": runner.info["stripe_url"]})


def _invoice(client: stripe.StripeClient) -> stripe.Invoice:
    customer = client.v1.customers.create(params={"email": "ap@example.com"})
    invoice = client.v1.invoices.create(
        params={"customer": customer.id, "collection_method": "send_invoice", "days_until_due": 30}
    )
    client.v1.invoices.add_lines(invoice.id, params={"lines": [{"amount": 5000}]})
    return client.v1.invoices.finalize_invoice(invoice.id)


def _wait_for(hooks: Receiver, path: str, text: str) -> tuple[dict[str, str], bytes]:
    """The delivery to `path` whose body contains `text` (earlier tests' may still come)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for route, headers, body in list(hooks.routed):
            if route == path and text.encode() in body:
                return headers, body
        time.sleep(0.02)
    raise AssertionError(f"no delivery to {path} with {text!r}; got {hooks.routed}")


# -- Stripe accounts ----------------------------------------------------------------------


def test_a_key_cannot_read_another_accounts_invoice(multi: LoopThread) -> None:
    us, eu = _stripe(multi, "stripe_us"), _stripe(multi, "stripe_eu")
    invoice = _invoice(eu)

    with pytest.raises(stripe.InvalidRequestError) as missing:
        us.v1.invoices.retrieve(invoice.id)

    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"
    assert eu.v1.invoices.retrieve(invoice.id).id == invoice.id
    assert invoice.customer not in {c.id for c in us.v1.customers.list().data}


def test_idempotency_keys_are_remembered_per_account(multi: LoopThread) -> None:
    us, eu = _stripe(multi, "stripe_us"), _stripe(multi, "stripe_eu")
    options = {"idempotency_key": "same-key-in-two-accounts"}

    first = us.v1.customers.create(params={"name": "US buyer"}, options=options)
    second = eu.v1.customers.create(params={"name": "EU buyer"}, options=options)

    assert (first.name, second.name) == ("US buyer", "EU buyer")
    assert first.id != second.id


def test_each_account_sends_its_events_to_its_own_route_signed_with_its_secret(
    multi: LoopThread, hooks: Receiver
) -> None:
    _stripe(multi, "stripe_eu").v1.customers.create(params={"name": "Berlin GmbH"})

    headers, body = _wait_for(hooks, "/webhooks/stripe_eu", "Berlin GmbH")

    secret = multi.info["stripe_accounts"]["stripe_eu"]["webhook_secret"]
    event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret)
    assert event.data.object.name == "Berlin GmbH"


def test_admin_actions_act_in_the_account_holding_the_object(multi: LoopThread) -> None:
    invoice = _invoice(_stripe(multi, "stripe_eu"))

    wrong = requests.post(
        f"{multi.info['admin_url']}/_sandbox/stripe/invoices/{invoice.id}/pay?account=stripe_us",
        json={},
        timeout=10,
    )
    paid = multi.admin("POST", f"stripe/invoices/{invoice.id}/pay", {})

    assert wrong.status_code == 404
    assert paid["invoice"]["status"] == "paid"


def test_state_lists_every_account(multi: LoopThread) -> None:
    state = multi.admin("GET", "state")["stripe"]
    assert set(state["accounts"]) == {"stripe_us", "stripe_eu"}


def test_rate_limits_are_counted_per_account(multi: LoopThread) -> None:
    system = multi.sandbox.systems["stripe"]
    limiter = RateLimiter(system.rate_limits(), "real")
    keys = {
        name: multi.info["stripe_accounts"][name]["api_key"] for name in ("stripe_us", "stripe_eu")
    }

    def admit(account: str) -> bool:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/v1/customers",
            "headers": [(b"authorization", f"Bearer {keys[account]}".encode())],
        }
        return limiter.admit(Request(scope))[0]

    us_admitted = [admit("stripe_us") for _ in range(26)]

    assert us_admitted.count(True) == 25  # Stripe's 25/s test-mode budget, used up
    assert admit("stripe_eu")  # the other account's budget is untouched


# -- QuickBooks realms --------------------------------------------------------------------


def _access_token(runner: LoopThread, connection: str) -> str:
    realm = runner.info["quickbooks_realms"][connection]
    response = requests.post(
        runner.info["token_url"],
        data={"grant_type": "refresh_token", "refresh_token": realm["refresh_token"]},
        auth=(runner.info["quickbooks_client_id"], runner.info["quickbooks_client_secret"]),
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _qbo(
    runner: LoopThread, token: str, method: str, realm: str, path: str, body: Any = None
) -> requests.Response:
    return requests.request(
        method,
        f"{runner.info['quickbooks_url']}/v3/company/{realm}/{path}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        json=body,
        timeout=10,
    )


@pytest.mark.parametrize(
    ("connection", "realm", "currency", "company"),
    [
        ("qbo_us", US_REALM, "USD", "Sandbox Company_US_1"),
        ("qbo_uk", UK_REALM, "GBP", "Sandbox Company_GB_1"),
    ],
)
def test_each_realm_has_its_own_preferences(
    multi: LoopThread, connection: str, realm: str, currency: str, company: str
) -> None:
    token = _access_token(multi, connection)

    answer = _qbo(multi, token, "GET", realm, "preferences").json()["Preferences"]
    admin = multi.admin("GET", f"quickbooks/preferences?realm_id={connection}")

    assert answer["CurrencyPrefs"]["HomeCurrency"]["value"] == currency
    assert answer["CurrencyPrefs"]["MultiCurrencyEnabled"] is True
    assert (admin["home_currency"], admin["company_name"]) == (currency, company)


def test_a_realms_token_opens_only_its_own_realm(multi: LoopThread) -> None:
    uk_token = _access_token(multi, "qbo_uk")
    assert _qbo(multi, uk_token, "GET", US_REALM, "preferences").status_code in (401, 403)


def test_realms_keep_their_own_id_sequences(multi: LoopThread) -> None:
    ids = []
    for connection, realm in (("qbo_us", US_REALM), ("qbo_uk", UK_REALM)):
        token = _access_token(multi, connection)
        created = _qbo(multi, token, "POST", realm, "vendor", {"DisplayName": "Same Supplier"})
        ids.append(created.json()["Vendor"]["Id"])
    assert ids[0] == ids[1]  # a new name list in each company starts at the same id


def test_one_notification_carries_every_realm_of_the_app(
    multi: LoopThread, hooks: Receiver
) -> None:
    tokens = {c: _access_token(multi, c) for c in ("qbo_us", "qbo_uk")}
    multi.admin("POST", "quickbooks/notifications", {"hold": True})
    _qbo(multi, tokens["qbo_us"], "POST", US_REALM, "customer", {"DisplayName": "Austin Inc"})
    _qbo(multi, tokens["qbo_uk"], "POST", UK_REALM, "customer", {"DisplayName": "Leeds Ltd"})

    multi.admin("POST", "quickbooks/notifications", {"hold": False})
    headers, body = _wait_for(hooks, "/webhooks/qbo_us", UK_REALM)

    token = multi.info["quickbooks_verifier_token"]
    expected = base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest())
    assert headers["intuit-signature"] == expected.decode()
    notifications = json.loads(body)["eventNotifications"]
    assert [n["realmId"] for n in notifications] == [US_REALM, UK_REALM]
    assert "/webhooks/qbo_uk" not in {route for route, _, _ in hooks.routed}  # one per app


# -- the profile end to end ---------------------------------------------------------------


@pytest.mark.slow
def test_multi_profile_serves_and_writes_four_connections(tmp_path: Path) -> None:
    from billsync.config.loader import load_settings
    from billsync.sandbox import jsonutil
    from billsync.sandbox.launcher import running_sandbox

    seed = tmp_path / "seed.json"
    seed.write_text(jsonutil.dumps(generate_seed(GenerateOptions(40, 4, profile=MULTI))))
    single_keys = {}
    with running_sandbox(tmp_path / "single") as single:
        plain = yaml.safe_load(single.config_path.read_text())
        single_keys = {kind: set(plain[kind]) for kind in ("quickbooks", "stripe")}

    with running_sandbox(tmp_path / "multi", seed_file=seed, profile="multi") as handle:
        config = yaml.safe_load(handle.config_path.read_text())
        settings = load_settings(handle.config_path, environ={})
        state = handle.state()

    connections = config["connections"]
    assert config["sync"]["targets"] == ["qbo_us", "qbo_uk", "stripe_us", "stripe_eu"]
    assert {name: c["kind"] for name, c in connections.items()} == {
        "qbo_us": "quickbooks",
        "qbo_uk": "quickbooks",
        "stripe_us": "stripe",
        "stripe_eu": "stripe",
    }
    assert "quickbooks" not in config and "stripe" not in config
    assert set(settings.connections) == set(connections)  # billsync accepts it as written
    for name, section in connections.items():
        assert set(section) == single_keys[section["kind"]] | {"kind"}, name
    assert connections["qbo_uk"]["home_currency"] == "GBP"
    assert connections["qbo_us"]["realm_id"] != connections["qbo_uk"]["realm_id"]
    mapping = yaml.safe_load(Path(config["sync"]["mapping_files"][0]).read_text())
    assert mapping["routing"]["values"]["qbo_uk"] == ["QuickBooks UK"]
    skus = {
        realm: {i["Sku"] for i in records["Item"] if i.get("Sku")}
        for realm, records in state["quickbooks"]["realms"].items()
    }
    assert skus[US_REALM] == skus[UK_REALM] and "PLAT-SUB" in skus[UK_REALM]
    assert all(len(a["prices"]) > 0 for a in state["stripe"]["accounts"].values())


def test_generated_multi_seed_routes_deals_by_currency_to_a_company() -> None:
    seed = generate_seed(GenerateOptions(deals=300, random_seed=3, profile=MULTI))
    labels = {c.label: c for c in MULTI.companies}

    for deal in seed["salesforce"]["Opportunity"]:
        platform = deal["Billing_Platform__c"]
        if platform is None:
            assert deal["CurrencyIsoCode"] == "USD"  # left to sync.default_target
            continue
        assert deal["CurrencyIsoCode"] in labels[platform].currencies

    routed = {d["Billing_Platform__c"] for d in seed["salesforce"]["Opportunity"]}
    assert routed >= set(labels)
    uk_items = seed["quickbooks"]["realms"]["qbo_uk"]["Item"]
    us_items = seed["quickbooks"]["realms"]["qbo_us"]["Item"]
    assert uk_items[0]["UnitPrice"] < us_items[0]["UnitPrice"]  # priced in GBP


def test_seeding_an_unknown_company_is_refused(multi: LoopThread) -> None:
    for section in (
        {"stripe": {"accounts": {"stripe_mars": {}}}},
        {"quickbooks": {"realms": {"qbo_mars": {}}}},
    ):
        answer = multi.admin("POST", "seed", section)
        assert "mars" in answer["error"]
