"""Auth flows, session renewal, retries, the quota floor and exact-decimal transport."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from responses import matchers

from billsync.connectors.salesforce.auth import JWT_GRANT
from billsync.connectors.salesforce.client import SalesforceClient
from billsync.connectors.salesforce.settings import SalesforceSettings
from billsync.core.http import VendorSession
from billsync.core.problems import ConfigError
from billsync.core.protocols import ConnectorError, ErrorClass
from tests.connectors.salesforce import (
    API,
    CLIENT_SECRET,
    INSTANCE,
    QUERY_URL,
    SESSION_ID,
    TOKEN_URL,
    dumps,
    error_body,
    limit_header,
    query_page,
    settings,
    token_body,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
EMPTY = dumps(query_page([]))


@pytest.fixture
def key_pair(tmp_path: Path) -> tuple[Path, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "jwt.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, key.public_key()


def jwt_settings(
    key_file: Path, login_url: str = "https://test.salesforce.com"
) -> SalesforceSettings:
    return settings(
        auth="jwt",
        instance_url=None,
        client_secret=None,
        login_url=login_url,
        username="integration@acme.example",
        private_key_file=key_file,
    )


def test_jwt_bearer_assertion_claims_and_token_request(key_pair) -> None:
    key_file, public_key = key_pair
    client = SalesforceClient(jwt_settings(key_file), now=lambda: NOW)
    with responses.RequestsMock() as rsps:
        token = rsps.post("https://test.salesforce.com/services/oauth2/token", json=token_body())
        query = rsps.get(QUERY_URL, body=EMPTY, headers=limit_header())
        client.query("SELECT Id FROM Opportunity", batch_size=2000)
    form = {k: v[0] for k, v in parse_qs(token.calls[0].request.body).items()}
    assert form["grant_type"] == JWT_GRANT
    header = jwt.get_unverified_header(form["assertion"])
    claims = jwt.decode(
        form["assertion"],
        public_key,
        algorithms=["RS256"],
        audience="https://test.salesforce.com",
        options={"verify_exp": False},
    )
    assert header["alg"] == "RS256"
    assert claims == {
        "iss": "3MVG9consumerKey",
        "sub": "integration@acme.example",
        "aud": "https://test.salesforce.com",
        "exp": int(NOW.timestamp()) + 180,
    }
    assert query.calls[0].request.headers["Authorization"] == f"Bearer {SESSION_ID}"


def test_jwt_audience_is_the_configured_login_origin(key_pair) -> None:
    key_file, _ = key_pair
    client = SalesforceClient(
        jwt_settings(key_file, login_url="https://acme.my.salesforce.com:8443/"), now=lambda: NOW
    )
    with responses.RequestsMock() as rsps:
        token = rsps.post(
            "https://acme.my.salesforce.com:8443/services/oauth2/token", json=token_body()
        )
        rsps.get(QUERY_URL, body=EMPTY)
        client.query("SELECT Id FROM Opportunity", batch_size=2000)
    assertion = parse_qs(token.calls[0].request.body)["assertion"][0]
    claims = jwt.decode(assertion, options={"verify_signature": False})
    assert claims["aud"] == "https://acme.my.salesforce.com:8443"


def test_client_credentials_use_basic_auth_against_my_domain() -> None:
    basic = base64.b64encode(f"3MVG9consumerKey:{CLIENT_SECRET}".encode()).decode()
    with responses.RequestsMock() as rsps:
        rsps.post(
            TOKEN_URL,
            json=token_body(),
            match=[
                matchers.header_matcher({"Authorization": f"Basic {basic}"}),
                matchers.urlencoded_params_matcher({"grant_type": "client_credentials"}),
            ],
        )
        rsps.get(QUERY_URL, body=EMPTY)
        SalesforceClient(settings()).query("SELECT Id FROM Opportunity", batch_size=2000)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"client_id": None}, "salesforce.client_id: required when salesforce.auth is"),
        ({"instance_url": None}, "salesforce.instance_url: required when"),
        ({"instance_url": "http://acme.example"}, "salesforce.instance_url: must be an https"),
        (
            {"auth": "jwt", "username": None, "private_key_file": None},
            "salesforce.username: required when salesforce.auth is jwt",
        ),
        ({"auth": "jwt", "username": "u", "private_key_file": "/nope.key"}, "no such file"),
        ({"extra_where": "x = 1; DROP"}, None),  # checked by the puller, not the client
    ],
)
def test_missing_credentials_are_config_errors_at_construction(overrides, problem) -> None:
    if problem is None:
        SalesforceClient(settings(**overrides))
        return
    with pytest.raises(ConfigError) as exc:
        SalesforceClient(settings(**overrides))
    assert problem in str(exc.value)


def test_session_renewal_on_invalid_session_id_reauthenticates_exactly_once() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(
            QUERY_URL,
            status=401,
            body=error_body("INVALID_SESSION_ID", "Session expired or invalid"),
            match=[matchers.header_matcher({"Authorization": f"Bearer {SESSION_ID}"})],
        )
        fresh = "00D5g000004BiLl!AQoAQH.fresh.session.token.value.0123456789abcdef"
        rsps.post(TOKEN_URL, json=token_body(fresh))
        ok = rsps.get(
            QUERY_URL,
            body=EMPTY,
            match=[
                matchers.header_matcher(
                    {"Authorization": f"Bearer {fresh}", "Sforce-Query-Options": "batchSize=500"}
                )
            ],
        )
        client = SalesforceClient(settings())
        assert client.query("SELECT Id FROM Opportunity", batch_size=500)["records"] == []
        assert [c.request.url for c in rsps.calls].count(TOKEN_URL) == 2  # exactly one re-auth
        assert client.logins == 2 and len(ok.calls) == 1


def test_second_invalid_session_after_renewal_is_auth_and_not_retried() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        token = rsps.post(TOKEN_URL, json=token_body())
        query = rsps.get(
            QUERY_URL, status=401, body=error_body("INVALID_SESSION_ID", "Session expired")
        )
        client = SalesforceClient(settings(retry_attempts=4), sleep=sleeps.append)
        with pytest.raises(ConnectorError) as exc:
            client.query("SELECT Id FROM Opportunity", batch_size=2000)
    assert exc.value.error_class is ErrorClass.AUTH
    assert len(token.calls) == 2 and len(query.calls) == 2 and sleeps == []


def test_transient_errors_are_retried_with_backoff_up_to_the_attempt_limit() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        query = rsps.get(QUERY_URL, status=503, body=error_body("SERVER_UNAVAILABLE", "busy"))
        client = SalesforceClient(settings(retry_attempts=4), sleep=sleeps.append)
        with pytest.raises(ConnectorError) as exc:
            client.query("SELECT Id FROM Opportunity", batch_size=2000)
    assert exc.value.error_class is ErrorClass.TRANSIENT
    assert len(query.calls) == 4 and len(sleeps) == 3
    assert all(0 <= s <= 30 for s in sleeps)


def test_transient_error_then_success() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, status=503, body=error_body("SERVER_UNAVAILABLE", "busy"))
        rsps.get(QUERY_URL, body=EMPTY)
        client = SalesforceClient(settings(), sleep=sleeps.append)
        assert client.query("SELECT Id FROM Opportunity", batch_size=2000)["done"] is True
    assert len(sleeps) == 1


def test_retry_recovers_after_connection_reset() -> None:
    import requests

    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, body=requests.exceptions.ChunkedEncodingError("reset"))
        rsps.get(QUERY_URL, body=dumps(query_page([{"Amount": Decimal("5.10")}])))
        client = SalesforceClient(settings(), sleep=sleeps.append)
        page = client.query("SELECT Amount FROM Opportunity", batch_size=2000)
    assert page["records"][0]["Amount"] == Decimal("5.10") and len(sleeps) == 1


def test_invalid_data_is_not_retried() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        query = rsps.get(QUERY_URL, status=400, body=error_body("MALFORMED_QUERY", "unexpected"))
        client = SalesforceClient(settings(retry_attempts=4), sleep=sleeps.append)
        with pytest.raises(ConnectorError):
            client.query("SELECT", batch_size=2000)
    assert len(query.calls) == 1 and sleeps == []


def test_quota_floor_stops_all_further_calls() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, body=EMPTY, headers=limit_header(used=89_000))
        rsps.get(QUERY_URL, body=EMPTY, headers=limit_header(used=90_001))
        client = SalesforceClient(settings(quota_floor_percent=10))
        client.query("SELECT Id FROM Opportunity", batch_size=2000)
        assert client.quota.stopped is False and client.quota.remaining == 11_000
        client.query("SELECT Id FROM Opportunity", batch_size=2000)  # answered, then stop
        quota = client.quota
        assert (quota.used, quota.max, quota.stopped) == (90_001, 100_000, True)
        with pytest.raises(ConnectorError) as exc:
            client.query_more("/services/data/v66.0/query/01gxx-2000", batch_size=2000)
        assert len(rsps.calls) == 3  # token + two queries: nothing was sent after the floor
    assert exc.value.error_class is ErrorClass.RATE_LIMITED and exc.value.code == "QUOTA_FLOOR"
    assert "salesforce.quota_floor_percent" in exc.value.message
    assert "90001 of 100000" in exc.value.message


def test_quota_is_read_from_failed_responses_too() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(
            QUERY_URL,
            status=400,
            body=error_body("MALFORMED_QUERY", "bad"),
            headers=limit_header(used=99_990),
        )
        client = SalesforceClient(settings())
        with pytest.raises(ConnectorError):
            client.query("SELECT", batch_size=2000)
    assert client.quota.stopped and client.quota.used == 99_990


def test_daily_limit_exceeded_stops_the_run_without_retrying() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        query = rsps.get(
            QUERY_URL,
            status=403,
            body=error_body("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
        )
        client = SalesforceClient(settings(retry_attempts=4), sleep=sleeps.append)
        with pytest.raises(ConnectorError) as exc:
            client.query("SELECT Id FROM Opportunity", batch_size=2000)
        with pytest.raises(ConnectorError) as again:
            client.query("SELECT Id FROM Opportunity", batch_size=2000)
    assert exc.value.error_class is ErrorClass.RATE_LIMITED
    assert again.value.code == "QUOTA_FLOOR"
    assert len(query.calls) == 1 and sleeps == [] and client.quota.stopped


def test_concurrency_limit_is_retried() -> None:
    sleeps: list[float] = []
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(
            QUERY_URL,
            status=403,
            body=error_body("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
        )
        rsps.get(QUERY_URL, body=EMPTY)
        client = SalesforceClient(settings(), sleep=sleeps.append)
        client.query("SELECT Id FROM Opportunity", batch_size=2000)
    assert len(sleeps) == 1 and not client.quota.stopped


def test_money_arrives_as_decimal_never_float() -> None:
    body = '{"totalSize":1,"done":true,"records":[{"Amount":0.1,"Big":1e3,"Qty":3}]}'
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, body=body)
        record = SalesforceClient(settings()).query("q", batch_size=2000)["records"][0]
    assert record == {"Amount": Decimal("0.1"), "Big": Decimal("1E+3"), "Qty": 3}
    assert type(record["Amount"]) is Decimal


def test_decimal_session_refuses_nan_and_forces_ca_bundle_and_timeout(monkeypatch) -> None:
    session = VendorSession(timeout_s=7, ca_bundle="/etc/billsync/ca.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/elsewhere.pem")
    seen: dict[str, object] = {}

    def fake_send(self, request, **kwargs):
        seen.update(kwargs)
        response = __import__("requests").Response()
        response.status_code = 200
        response._content = b'{"x": NaN}'
        return response

    monkeypatch.setattr("requests.Session.send", fake_send)
    response = session.get(f"{INSTANCE}/services/data")
    assert seen["verify"] == "/etc/billsync/ca.pem" and seen["timeout"] == 7
    with pytest.raises(ValueError, match="NaN"):
        response.json()


def test_plain_sessions_are_refused() -> None:
    import requests

    with pytest.raises(TypeError, match="VendorSession"):
        SalesforceClient(settings(), session=requests.Session())  # type: ignore[arg-type]


def test_secrets_never_appear_in_reprs_or_errors(key_pair) -> None:
    key_file, _ = key_pair
    key_text = key_file.read_text()
    client = SalesforceClient(settings(), sleep=lambda s: None)
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, status=500, body=f"internal error for token {SESSION_ID}")
        with pytest.raises(ConnectorError) as exc:
            client.query("SELECT Id FROM Opportunity", batch_size=2000)
    jwt_client = SalesforceClient(jwt_settings(key_file))
    shown = " ".join([repr(client), repr(jwt_client), str(exc.value), repr(exc.value)])
    shown += repr(jwt_client._login) + repr(vars(client).get("_login"))
    for secret in (SESSION_ID, CLIENT_SECRET, key_text[40:80]):
        assert secret not in shown


def test_query_more_follows_the_url_on_the_instance() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        more = rsps.get(f"{API}/query/01gxx-2000", body=EMPTY)
        SalesforceClient(settings()).query_more(
            "/services/data/v66.0/query/01gxx-2000", batch_size=2000
        )
    assert more.calls[0].request.headers["Sforce-Query-Options"] == "batchSize=2000"


def test_a_stopped_client_rechecks_the_allocation_and_resumes() -> None:
    """A long-lived client (serve's inbox worker) at the floor looks again every
    quota_recheck_s with one limits call and goes on once the allocation recovered."""
    clock = [datetime(2026, 5, 1, 9, 0, tzinfo=UTC)]
    limits_url = f"{API}/limits/"

    def daily(remaining: int) -> dict[str, object]:
        return {"DailyApiRequests": {"Max": 100_000, "Remaining": remaining}}

    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, body=EMPTY, headers=limit_header(used=95_000))
        client = SalesforceClient(settings(quota_floor_percent=10, quota_recheck_s=600),
                                  now=lambda: clock[0])  # fmt: skip
        client.query("SELECT Id FROM Opportunity", batch_size=2000)
        assert client.quota.stopped
        with pytest.raises(ConnectorError, match="nearly spent"):  # too soon: no call at all
            client.query("SELECT Id FROM Opportunity", batch_size=2000)
        assert len(rsps.calls) == 2
        clock[0] += timedelta(minutes=10)  # due, but still below the floor: one limits call
        still = rsps.get(limits_url, json=daily(9_000))
        with pytest.raises(ConnectorError, match="nearly spent"):
            client.query("SELECT Id FROM Opportunity", batch_size=2000)
        assert len(still.calls) == 1 and client.quota.used == 91_000
        clock[0] += timedelta(minutes=5)  # not due again yet
        with pytest.raises(ConnectorError):
            client.query("SELECT Id FROM Opportunity", batch_size=2000)
        assert len(still.calls) == 1
        clock[0] += timedelta(minutes=5)
        rsps.replace(responses.GET, limits_url, json=daily(40_000))
        rsps.get(QUERY_URL, body=EMPTY, headers=limit_header(used=60_001))
        client.query("SELECT Id FROM Opportunity", batch_size=2000)  # recovered: sent
    assert not client.quota.stopped and client.quota.used == 60_001


def test_a_failed_recheck_keeps_the_stop_until_the_next() -> None:
    clock = [datetime(2026, 5, 1, 9, 0, tzinfo=UTC)]
    with responses.RequestsMock() as rsps:
        rsps.post(TOKEN_URL, json=token_body())
        rsps.get(QUERY_URL, body=EMPTY, headers=limit_header(used=99_000))
        client = SalesforceClient(settings(quota_recheck_s=60), now=lambda: clock[0])
        client.query("SELECT Id FROM Opportunity", batch_size=2000)
        clock[0] += timedelta(seconds=61)
        failed = rsps.get(f"{API}/limits/", status=503, body="unavailable")
        with pytest.raises(ConnectorError, match="nearly spent"):
            client.query("SELECT Id FROM Opportunity", batch_size=2000)
        with pytest.raises(ConnectorError, match="nearly spent"):
            client.query("SELECT Id FROM Opportunity", batch_size=2000)
    assert len(failed.calls) == 1 and client.quota.stopped
