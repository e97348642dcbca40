"""Webhooks, throttling, seeds, config and call names of the QuickBooks sandbox."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from quickbooks.exceptions import QuickbooksException, SevereException
from quickbooks.objects.customer import Customer
from quickbooks.objects.item import Item

from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.sandbox.generate import GenerateOptions, generate_seed
from tests.sandbox.quickbooks_support import QboEnv, qbo_sandbox


class Receiver:
    """A local webhook endpoint that records what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes, dict[str, str]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, body, dict(self.headers)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int) -> list[tuple[str, bytes, dict[str, str]]]:
        deadline = time.monotonic() + 5
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QboEnv]:
    with qbo_sandbox(tmp_path_factory.mktemp("qbo-platform")) as running:
        yield running


@pytest.fixture
def receiver(env: QboEnv) -> Iterator[Receiver]:
    env.admin("POST", "reset")
    hook = Receiver()
    env.admin("POST", "webhooks", {"url": hook.url})
    yield hook
    env.admin("POST", "webhooks", {"url": None})
    env.admin("POST", "quickbooks/webhook_format", {"format": "legacy"})
    hook.server.shutdown()


def verify(verifier: str, body: bytes, signature: str) -> bool:
    expected = base64.b64encode(hmac.new(verifier.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected.decode(), signature)


def test_legacy_webhook_signed_with_the_verifier_token(env: QboEnv, receiver: Receiver) -> None:
    qb = env.client()
    created = Customer()
    created.DisplayName = "Hooked Inc"
    created = created.save(qb=qb)
    path, body, headers = receiver.wait_for(1)[0]
    assert path == "/webhooks/quickbooks"
    verifier = env.info["quickbooks_verifier_token"]
    assert verify(verifier, body, headers["intuit-signature"])
    assert qb.validate_webhook_signature(body.decode(), headers["intuit-signature"], verifier)
    payload = json.loads(body)
    notification = payload["eventNotifications"][0]
    assert notification["realmId"] == env.realm_id
    entity = notification["dataChangeEvent"]["entities"][0]
    assert (entity["name"], entity["id"], entity["operation"]) == (
        "Customer",
        created.Id,
        "Create",
    )
    assert entity["lastUpdated"].endswith("Z")


def test_cloudevents_webhook_for_an_admin_payment(env: QboEnv, receiver: Receiver) -> None:
    env.admin("POST", "quickbooks/webhook_format", {"format": "cloudevents"})
    qb = env.client()
    buyer = Customer()
    buyer.DisplayName = "Cloud Payer"
    buyer = buyer.save(qb=qb)
    invoice = qb.create_object(
        "Invoice",
        json.dumps(
            {
                "CustomerRef": {"value": buyer.Id},
                "Line": [
                    {"Amount": 40, "DetailType": "SalesItemLineDetail",
                     "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}
                ],
            }
        ),
    )["Invoice"]  # fmt: skip
    paid = env.admin("POST", "quickbooks/payments", {"invoice_id": invoice["Id"], "amount": "40"})
    deliveries = receiver.wait_for(3)
    assert len(deliveries) == 3
    verifier = env.info["quickbooks_verifier_token"]
    for _, body, headers in deliveries:
        assert verify(verifier, body, headers["intuit-signature"])
    events = json.loads(deliveries[2][1])
    assert isinstance(events, list) and len(events) == 1
    event = events[0]
    assert event["specversion"] == "1.0"
    assert event["type"] == "qbo.payment.created.v1"
    assert event["intuitentityid"] == paid["Payment"]["Id"]
    assert event["intuitaccountid"] == env.realm_id
    assert event["datacontenttype"] == "application/json"
    types = [json.loads(body)[0]["type"] for _, body, _ in deliveries]
    assert types == ["qbo.customer.created.v1", "qbo.invoice.created.v1", "qbo.payment.created.v1"]


def test_forced_throttle_is_xml_and_the_sdk_reports_10000(env: QboEnv) -> None:
    env.admin("POST", "reset")
    qb = env.client()
    env.admin("POST", "quickbooks/throttle", {"count": 1})
    with pytest.raises(QuickbooksException) as caught:
        Item.all(qb=qb)
    assert caught.value.error_code == 10000
    assert "ThrottleExceeded" in caught.value.message
    assert len(Item.all(qb=qb)) == 2
    env.admin("POST", "quickbooks/throttle", {"count": 1, "format": "json"})
    raw = requests.get(
        f"{env.url}/v3/company/{env.realm_id}/item/1",
        headers={"Authorization": f"Bearer {qb.auth_client.access_token}"},
        timeout=5,
    )
    assert raw.status_code == 429
    assert raw.json()["Fault"]["Error"][0]["code"] == "3001"


def test_injected_5xx_is_a_system_fault(env: QboEnv) -> None:
    qb = env.client()
    env.admin("POST", "faults", {"systems": ["quickbooks"], "error_rate_5xx": 1.0})
    try:
        with pytest.raises(SevereException) as caught:
            Item.all(qb=qb)
    finally:
        env.admin("POST", "faults", {})
    assert caught.value.error_code == 10000


def test_real_rate_limits(tmp_path: Path) -> None:
    with qbo_sandbox(tmp_path, rate_limits="real") as env:
        qb = env.client()
        body = json.dumps({"BatchItemRequest": [{"bId": "1", "Query": "SELECT * FROM Term"}]})
        url = f"{qb.api_url}/company/{qb.company_id}/batch"
        for _ in range(40):
            qb.post(url, body)
        with pytest.raises(QuickbooksException) as caught:
            qb.post(url, body)  # the 41st batch in a minute
        assert caught.value.error_code == 10000
        assert Customer.count(qb=qb) == 0  # single calls still have budget (500/min)


def test_seed_with_generated_catalogue_and_ids(tmp_path: Path) -> None:
    seed = generate_seed(GenerateOptions(deals=20, random_seed=3))["quickbooks"]
    seed["Customer"] = [
        {"Id": "58", "DisplayName": "Seeded Buyer", "CurrencyRef": {"value": "JPY"}}
    ]
    seed["Invoice"] = [
        {"CustomerRef": {"value": "58"}, "ExchangeRate": Decimal("0.0067"),
         "Line": [{"Amount": 1500, "DetailType": "SalesItemLineDetail",
                   "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 1,
                                           "UnitPrice": 1500}}]}
    ]  # fmt: skip
    with qbo_sandbox(tmp_path) as env:
        env.admin("POST", "seed", {"quickbooks": seed})  # exact decimals (harness: json)
        state = env.state()
        names = {t["Name"] for t in state["Term"]}
        assert {"Net 15", "Net 30", "Due on receipt", "Net 60"} <= names
        assert len(state["Term"]) == 5  # seeded terms merged with the built-in ones
        assert len(state["Item"]) == 2 + len(seed["Item"])
        invoice = state["Invoice"][0]
        assert invoice["TotalAmt"] == Decimal("1500.0")
        assert invoice["HomeTotalAmt"] == Decimal("10.05")
        assert state["Customer"][0]["Balance"] == Decimal("1500.0")
        qb = env.client()
        fresh = Customer()
        fresh.DisplayName = "After Seed"
        assert int(fresh.save(qb=qb).Id) == 59


def test_bad_seed_is_refused(env: QboEnv) -> None:
    response = requests.post(
        f"{env.info['admin_url']}/_sandbox/seed",
        json={"quickbooks": {"Customer": [{"DisplayName": "a:b"}]}},
        timeout=5,
    )
    assert response.status_code == 400
    assert "2040" in response.json()["error"]


def test_config_section_fits_the_settings_model(env: QboEnv, tmp_path: Path) -> None:
    config = yaml.safe_load(
        (env.runner.sandbox.options.config_out or tmp_path).read_text(encoding="utf-8")
    )
    section = QuickBooksSettings.model_validate(config["quickbooks"])
    assert section.base_url == f"{env.url}/v3"
    assert section.realm_id == env.realm_id
    assert section.discovery_url and section.discovery_url.startswith(env.url)
    info = env.info
    assert info["token_url"] == f"{env.url}/oauth2/v1/tokens/bearer"
    for key in ("quickbooks_verifier_token", "quickbooks_client_id", "quickbooks_refresh_token"):
        assert info[key]


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("GET", "/v3/company/9341453050298475/invoice/130", "GET invoice/{id}"),
        ("POST", "/v3/company/9341453050298475/invoice", "POST invoice"),
        ("POST", "/v3/company/9341453050298475/Invoice/7/send", "POST invoice/{id}/send"),
        ("POST", "/v3/company/9341453050298475/query", "POST query"),
        ("GET", "/v3/company/9341453050298475/cdc", "GET cdc"),
        ("POST", "/oauth2/v1/tokens/bearer", "POST oauth2/v1/tokens/bearer"),
        (
            "GET",
            "/.well-known/openid_sandbox_configuration/",
            "GET .well-known/openid_sandbox_configuration",
        ),
    ],
)
def test_endpoint_names(env: QboEnv, method: str, path: str, name: str) -> None:
    assert env.system.endpoint_name(method, path) == name


def test_calls_are_counted_per_endpoint(env: QboEnv) -> None:
    env.admin("POST", "reset")
    qb = env.client()
    Item.get("1", qb=qb)
    Item.get("2", qb=qb)
    calls = env.admin("GET", "calls")["systems"]["quickbooks"]
    assert calls["GET item/{id}"] == 2
    assert calls["POST oauth2/v1/tokens/bearer"] == 1
