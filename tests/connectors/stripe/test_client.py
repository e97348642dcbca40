"""The transport: the error table, in-call retries with one idempotency key, the rate
limiter, paging, the CA bundle, and the API key kept out of every message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import stripe
from pydantic import SecretStr

from billsync.connectors.stripe.client import WINDOW_S, StripeApi
from billsync.connectors.stripe.settings import StripeSettings
from billsync.core.http import VendorSession
from billsync.core.protocols import ConnectorError, ErrorClass

BASE = "http://stripe.test"
KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dcSECRET"


def settings(**overrides: Any) -> StripeSettings:
    return StripeSettings(
        **{"enabled": True, "api_key": SecretStr(KEY), "base_url": BASE, **overrides}
    )


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def api(sleeps: list[float]) -> StripeApi:
    return StripeApi(settings(), sleep=sleeps.append)


def error(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **extra}}


def create_customer(api: StripeApi, key: str | None = "key-1") -> Any:
    return api.call(
        "customer create",
        lambda o: api.v1.customers.create(params={"name": "Acme"}, options=o),
        idempotency_key=key,
    )


CASES = [
    (
        400,
        error("invalid_request_error", "Invalid integer: x", code="parameter_invalid_integer",
              param="days_until_due"),
        {},
        ErrorClass.INVALID_DATA,
        "parameter_invalid_integer",
        1,
    ),
    (
        400,
        error("invalid_request_error", "No such customer: 'cus_1'", code="resource_missing",
              param="customer"),
        {},
        ErrorClass.NOT_FOUND,
        "resource_missing",
        1,
    ),
    (404, error("invalid_request_error", "No such invoice"), {}, ErrorClass.NOT_FOUND, None, 1),
    (401, error("invalid_request_error", f"Invalid API Key provided: {KEY}"), {},
     ErrorClass.AUTH, None, 1),
    (403, error("invalid_request_error", "The provided key does not have access"), {},
     ErrorClass.AUTH, None, 1),
    (402, error("card_error", "Your card was declined.", code="card_declined"), {},
     ErrorClass.INVALID_DATA, "card_declined", 1),
    (400, error("idempotency_error", "Keys for idempotent requests can only be used with the "
                "same parameters they were first used with."), {},
     ErrorClass.INVALID_DATA, "idempotency_error", 1),
    (409, error("invalid_request_error", "There is currently another in-progress request using "
                "this Stripe API key."), {}, ErrorClass.TRANSIENT, None, 3),
    (429, error("invalid_request_error", "Too many requests", code="rate_limit"), {},
     ErrorClass.RATE_LIMITED, "rate_limit", 3),
    (500, error("api_error", "Something went wrong"), {"Stripe-Should-Retry": "true"},
     ErrorClass.TRANSIENT, None, 3),
    (500, error("api_error", "Something went wrong"), {"Idempotent-Replayed": "true"},
     ErrorClass.TRANSIENT, "replayed_error", 1),
    (503, error("api_error", "Unavailable"), {"Stripe-Should-Retry": "false"},
     ErrorClass.TRANSIENT, "should_not_retry", 1),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "headers", "expected", "code", "calls"), CASES)
@responses.activate
def test_error_table(
    sleeps: list[float],
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    expected: ErrorClass,
    code: str | None,
    calls: int,
) -> None:
    api = StripeApi(settings(retry_attempts=3), sleep=sleeps.append)
    responses.post(f"{BASE}/v1/customers", json=body, status=status, headers=headers)
    with pytest.raises(ConnectorError) as caught:
        create_customer(api)
    found = caught.value
    assert (found.error_class, found.code, len(responses.calls)) == (expected, code, calls)
    assert found.message.startswith("Stripe customer create failed") and " — " in found.message
    assert KEY not in str(found) and KEY not in repr(found)
    assert found.__cause__ is None and found.__suppress_context__
    # Every attempt carried the same idempotency key.
    assert {c.request.headers["Idempotency-Key"] for c in responses.calls} == {"key-1"}
    if status == 400 and "param" in body["error"]:
        assert found.field == body["error"]["param"]


@responses.activate
def test_connection_errors_are_transient_and_retried(api: StripeApi) -> None:
    responses.post(f"{BASE}/v1/customers", body=requests.ConnectionError("reset"))
    responses.post(f"{BASE}/v1/customers", json={"id": "cus_1", "object": "customer"})
    reply = create_customer(api)
    assert reply.data["id"] == "cus_1" and not reply.replayed and len(responses.calls) == 2


@responses.activate
def test_429_is_retried_after_retry_after_with_the_same_key(
    api: StripeApi, sleeps: list[float]
) -> None:
    limited = error("invalid_request_error", "Too many", code="rate_limit")
    responses.post(f"{BASE}/v1/customers", json=limited, status=429, headers={"Retry-After": "2"})
    responses.post(
        f"{BASE}/v1/customers",
        json={"id": "cus_1", "object": "customer"},
        headers={"Idempotent-Replayed": "true"},
    )
    reply = create_customer(api)
    assert reply.replayed and sleeps == [2]
    assert [c.request.headers["Idempotency-Key"] for c in responses.calls] == ["key-1"] * 2
    sent = responses.calls[0].request
    assert sent.headers["Stripe-Version"] == stripe.api_version
    assert sent.headers["Authorization"] == f"Bearer {KEY}"


@responses.activate
def test_configured_api_version_is_sent() -> None:
    api = StripeApi(settings(api_version="2025-09-30.clover"), sleep=lambda s: None)
    responses.get(f"{BASE}/v1/customers", json={"object": "list", "data": [], "has_more": False})
    list(api.pages("customers", lambda p, o: api.v1.customers.list(params=p, options=o), {}))
    assert responses.calls[0].request.headers["Stripe-Version"] == "2025-09-30.clover"


@responses.activate
def test_pages_forwards_and_backwards(api: StripeApi) -> None:
    def page(ids: list[str], more: bool) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": i, "object": "event"} for i in ids],
                "has_more": more, "url": "/v1/events"}  # fmt: skip

    responses.get(f"{BASE}/v1/events", json=page(["e4", "e3"], True))
    responses.get(f"{BASE}/v1/events", json=page(["e2", "e1"], False))
    events = api.v1.events
    forwards = [e["id"] for e in api.pages("events", lambda p, o: events.list(params=p, options=o),
                                           {})]  # fmt: skip
    assert forwards == ["e4", "e3", "e2", "e1"]
    assert "starting_after=e3" in str(responses.calls[1].request.url)
    responses.get(f"{BASE}/v1/events", json=page(["e3", "e2"], True))
    responses.get(f"{BASE}/v1/events", json=page(["e5", "e4"], False))
    backwards = list(
        api.pages(
            "events",
            lambda p, o: events.list(params=p, options=o),
            {"ending_before": "e1"},
            backwards=True,
        )
    )
    assert [e["id"] for e in backwards] == ["e2", "e3", "e4", "e5"]  # oldest first
    assert "ending_before=e3" in str(responses.calls[3].request.url)


def test_keys_that_cannot_create_invoices_are_refused_at_start() -> None:
    with pytest.raises(ConnectorError) as publishable:
        StripeApi(settings(api_key=SecretStr("pk_test_abc")))
    assert publishable.value.error_class is ErrorClass.AUTH and "pk_" in publishable.value.message
    with pytest.raises(ConnectorError):
        StripeApi(StripeSettings())


def test_rate_limiter_allows_25_in_any_second() -> None:
    clock = {"t": 100.0}
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock["t"] += seconds

    limiter = StripeApi(settings(), sleep=sleep, monotonic=lambda: clock["t"])._limiter
    for _ in range(25):
        limiter.acquire()
        clock["t"] += 0.01
    assert waits == []
    limiter.acquire()  # the 26th within one second waits for the first to age out
    assert waits == [pytest.approx(0.80)]
    clock["t"] += 2 * WINDOW_S
    for _ in range(25):
        limiter.acquire()
    assert len(waits) == 1


def test_live_keys_get_100_per_second_unless_configured() -> None:
    live = StripeApi(settings(api_key=SecretStr("rk_live_abcdef")))
    assert live.livemode and live._limiter.window.limit == 100
    assert StripeApi(settings())._limiter.window.limit == 25
    assert StripeApi(settings(rate_limit_per_s=5))._limiter.window.limit == 5
    assert KEY not in repr(StripeApi(settings()))


def test_ca_bundle_replaces_the_sdks_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    seen: dict[str, Any] = {}

    def fake(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise requests.ConnectionError("stop here")

    monkeypatch.setattr(requests.Session, "send", fake)
    api = StripeApi(
        settings(base_url="https://127.0.0.1:9", ca_bundle=bundle, retry_attempts=1),
        sleep=lambda s: None,
    )
    assert isinstance(api._sdk._requestor._client._session, VendorSession)  # type: ignore[union-attr]
    with pytest.raises(ConnectorError):
        create_customer(api)
    assert seen["verify"] == str(bundle) and seen["timeout"] == 30


def test_error_body_shapes_parse_from_real_fixtures() -> None:
    raw = json.dumps(error("invalid_request_error", "x"))
    assert json.loads(raw)["error"]["type"] == "invalid_request_error"
