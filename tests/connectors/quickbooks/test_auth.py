"""Tokens through the ledger: rotation saved before use, crash safety, invalid_grant,
401 refresh, one refresher at a time, discovery without reaching Intuit."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import pytest
import responses

from billsync.connectors.quickbooks import AuthGateway, QuickBooksConnector, TokenSet
from billsync.connectors.quickbooks.auth import credential_name
from billsync.connectors.quickbooks.client import check_base_url
from billsync.core.protocols import ConnectorError, CredentialStore, ErrorClass
from tests.connectors.quickbooks.conftest import Qbo

TOKEN_CALL = "POST oauth2/v1/tokens/bearer"
DISCOVERY_CALL = "GET .well-known/openid_sandbox_configuration"


@pytest.fixture
def sandbox_clock(qbo: Qbo) -> Iterator[Any]:
    moved: list[int] = []

    def advance(seconds: int) -> None:
        qbo.admin("POST", "clock", {"advance_s": seconds})
        moved.append(seconds)

    yield advance
    if moved:
        qbo.admin("POST", "clock", {"advance_s": -sum(moved)})


def stored(qbo: Qbo) -> TokenSet:
    loaded = qbo.ledger.load_credentials(credential_name(qbo.realm_id))
    assert loaded is not None
    return TokenSet.from_data(loaded.data)


class Spy:
    """A CredentialStore that runs a hook before each save (a crash, a rival, a probe)."""

    def __init__(self, inner: CredentialStore, before_save: Any = None) -> None:
        self.inner = inner
        self.before_save = before_save
        self.saves = 0

    def load(self, name: str) -> tuple[Mapping[str, Any], int] | None:
        return self.inner.load(name)

    def save(self, name: str, data: Mapping[str, Any], expected_version: int | None) -> bool:
        self.saves += 1
        if self.before_save is not None:
            self.before_save(name, data, expected_version)
        return self.inner.save(name, data, expected_version)

    def hold(self, name: str, ttl: timedelta) -> AbstractContextManager[bool]:
        return self.inner.hold(name, ttl)


def connector_with(qbo: Qbo, store: CredentialStore, **overrides: Any) -> QuickBooksConnector:
    return QuickBooksConnector(
        qbo.settings(**overrides),
        store,
        clock=qbo.time.now,
        sleep=qbo.time.sleep,
        monotonic=qbo.time.monotonic,
    )


def test_bootstrap_then_rotated_token_is_committed_before_the_access_token_is_used(
    qbo: Qbo,
) -> None:
    bootstrap = qbo.info["quickbooks_refresh_token"]
    seen_at_save: list[tuple[dict[str, int], dict[str, Any]]] = []

    def probe(name: str, data: Mapping[str, Any], expected: int | None) -> None:
        seen_at_save.append((qbo.calls(), dict(data)))

    store = Spy(qbo.store(), probe)
    qbo.reset_calls()
    connector = connector_with(qbo, store)
    assert connector.catalog().home_currency == "USD"
    # Save 1 stores the configured bootstrap token; save 2 the rotated pair — before any
    # API call (only discovery and the token endpoint had been called).
    assert store.saves == 2
    calls_at_rotation, saved = seen_at_save[1]
    assert set(calls_at_rotation) == {DISCOVERY_CALL, TOKEN_CALL}
    assert saved["refresh_token"] != bootstrap
    tokens = stored(qbo)
    assert tokens.refresh_token == saved["refresh_token"]
    assert tokens.access_token == connector.client.session.access_token
    assert tokens.refresh_expires_at is not None and tokens.connected_at is not None
    assert "AB11" not in repr(tokens) and "eyJ" not in repr(tokens)


def test_next_run_reuses_the_stored_access_token_without_discovery_or_refresh(qbo: Qbo) -> None:
    qbo.connector().catalog().preferences()
    qbo.reset_calls()
    assert qbo.connector(holder="next-run").catalog().home_currency == "USD"
    assert qbo.calls() == {"GET preferences": 1}


class Crash(Exception):
    pass


@pytest.mark.parametrize("grace", [60, None], ids=["sandbox-60s-grace", "intuit-until-used"])
def test_crash_between_refresh_and_save_next_run_still_connects(
    qbo: Qbo, sandbox_clock: Any, grace: int | None
) -> None:
    qbo.admin("POST", "quickbooks/oauth/config", {"refresh_grace_s": grace})
    qbo.connector().catalog().preferences()  # stores a rotated token: our "old" one
    before = stored(qbo)
    sandbox_clock(3600)  # its access token expires on the sandbox clock too
    qbo.time.sleep(3600)

    def crash(name: str, data: Mapping[str, Any], expected: int | None) -> None:
        raise Crash("process died after Intuit answered, before the commit")

    crashed = connector_with(qbo, Spy(qbo.store(), crash))
    with pytest.raises(Crash):
        crashed.catalog().preferences()
    assert stored(qbo).refresh_token == before.refresh_token  # the new one was lost
    if grace is None:
        sandbox_clock(86_400)  # a day later: Intuit keeps it until its successor is used
    next_run = qbo.connector(holder="next-run")
    assert next_run.catalog().home_currency == "USD"
    assert stored(qbo).refresh_token != before.refresh_token


def test_saving_first_is_what_matters_once_the_sandbox_grace_is_over(
    qbo: Qbo, sandbox_clock: Any
) -> None:
    """The sandbox's default is stricter than Intuit: the superseded token dies after
    60 s even if its successor was never used. The token we lose in a crash was never
    used, so under Intuit's rule (above) it cannot strand us; this pins the limit."""
    qbo.connector().catalog().preferences()
    qbo.time.sleep(3600)
    sandbox_clock(3600)

    def crash(name: str, data: Mapping[str, Any], expected: int | None) -> None:
        raise Crash()

    with pytest.raises(Crash):
        connector_with(qbo, Spy(qbo.store(), crash)).catalog().preferences()
    sandbox_clock(120)
    with pytest.raises(ConnectorError) as caught:
        qbo.connector(holder="next-run").catalog().preferences()
    assert caught.value.code == "invalid_grant"


def test_invalid_grant_stops_the_connector_without_hammering(qbo: Qbo) -> None:
    qbo.admin("POST", "quickbooks/oauth/revoke", {})
    connector = qbo.connector()
    with pytest.raises(ConnectorError) as caught:
        connector.catalog().preferences()
    error = caught.value
    assert error.error_class is ErrorClass.AUTH
    assert error.code == "invalid_grant"
    assert "billsync auth quickbooks" in error.message
    assert "AB11" not in str(error) + repr(error)
    qbo.reset_calls()
    for _ in range(3):
        with pytest.raises(ConnectorError) as again:
            connector.catalog().term_exists("Net 30")
        assert again.value is error
    assert qbo.calls() == {}  # failed fast: not one more request


def test_a_401_refreshes_once_and_repeats_the_call(qbo: Qbo) -> None:
    connector = qbo.connector()
    connector.catalog().preferences()
    first = stored(qbo)
    qbo.admin("POST", "quickbooks/oauth/expire_access_tokens", {})
    qbo.reset_calls()
    assert connector.catalog().term_exists("Net 30")
    calls = qbo.calls()
    assert calls[TOKEN_CALL] == 1
    assert calls["POST query"] == 2  # refused once, then repeated with the new token
    assert stored(qbo).refresh_token != first.refresh_token


def test_access_token_refreshed_proactively_before_expiry(qbo: Qbo) -> None:
    connector = qbo.connector()
    connector.catalog().preferences()
    qbo.time.sleep(3600 - 299)  # inside the 300 s margin
    qbo.reset_calls()
    connector.catalog().term_exists("Net 30")
    assert qbo.calls() == {TOKEN_CALL: 1, "POST query": 1}  # no 401 first


def test_two_processes_needing_a_token_refresh_once(qbo: Qbo) -> None:
    settings = qbo.settings()
    first = QuickBooksConnector(settings, qbo.store("process-a"))
    second = QuickBooksConnector(settings, qbo.store("process-b"))
    first.catalog().preferences()
    qbo.admin("POST", "quickbooks/oauth/expire_access_tokens", {})
    qbo.reset_calls()
    barrier = threading.Barrier(2)
    tokens: list[str] = []

    def work(connector: QuickBooksConnector) -> None:
        barrier.wait()
        tokens.append(connector.tokens.refresh_after_401(stored(qbo).access_token or ""))

    threads = [threading.Thread(target=work, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert qbo.calls().get(TOKEN_CALL) == 1
    assert len(set(tokens)) == 1 and tokens[0] == stored(qbo).access_token


def test_threads_of_one_process_refresh_once(qbo: Qbo) -> None:
    connector = QuickBooksConnector(qbo.settings(), qbo.store())
    qbo.reset_calls()
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def work() -> None:
        barrier.wait()
        results.append(connector.catalog().term_exists("Net 30"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [True] * 4
    assert qbo.calls()[TOKEN_CALL] == 1


def test_a_refresh_that_loses_the_save_race_uses_the_stored_token(qbo: Qbo) -> None:
    qbo.connector().catalog().preferences()
    qbo.time.sleep(3600)
    rival = TokenSet.from_data(
        {**stored(qbo).to_data(), "access_token": "eyJrival", "refresh_token": "AB11rival"}
    )
    rival = TokenSet(
        refresh_token=rival.refresh_token,
        access_token=rival.access_token,
        access_expires_at=qbo.time.now() + timedelta(hours=1),
    )

    def rival_saves_first(name: str, data: Mapping[str, Any], expected: int | None) -> None:
        assert qbo.store("rival").save(name, rival.to_data(), expected)

    connector = connector_with(qbo, Spy(qbo.store(), rival_saves_first))
    assert connector.tokens.access_token() == "eyJrival"
    assert stored(qbo).refresh_token == "AB11rival"


def test_not_connected_without_a_stored_or_configured_token(qbo: Qbo) -> None:
    connector = qbo.connector(refresh_token=None)
    with pytest.raises(ConnectorError) as caught:
        connector.catalog().preferences()
    assert caught.value.error_class is ErrorClass.AUTH
    assert caught.value.code == "NOT_CONNECTED"
    assert "billsync auth quickbooks" in caught.value.message


def test_a_named_connection_says_how_to_connect_that_company(qbo: Qbo) -> None:
    connector = QuickBooksConnector(
        qbo.settings(refresh_token=None),
        qbo.store("test-process"),
        clock=qbo.time.now,
        sleep=qbo.time.sleep,
        monotonic=qbo.time.monotonic,
        name="qbo_uk",
    )
    with pytest.raises(ConnectorError) as caught:
        connector.catalog().preferences()
    assert "run `billsync auth --connection qbo_uk quickbooks`" in caught.value.message


@responses.activate
def test_discovery_comes_from_the_configured_url_and_never_from_intuit(qbo: Qbo) -> None:
    document = {
        "issuer": "https://idp.test/op",
        "authorization_endpoint": "https://idp.test/connect",
        "token_endpoint": "https://idp.test/token",
        "revocation_endpoint": "https://idp.test/revoke",
        "jwks_uri": "https://idp.test/jwks",
        "userinfo_endpoint": "https://idp.test/userinfo",
    }
    responses.get("https://idp.test/discovery", json=document)
    responses.post(
        "https://idp.test/token",
        json={
            "access_token": "eyJx",
            "refresh_token": "AB11y",
            "expires_in": 3600,
            "x_refresh_token_expires_in": 8_726_400,
            "token_type": "bearer",
        },
    )
    gateway = AuthGateway(qbo.settings(discovery_url="https://idp.test/discovery"))
    client = gateway.client()
    assert client.token_endpoint == "https://idp.test/token"
    assert client.environment == "sandbox"
    fresh = gateway.refresh(TokenSet(refresh_token="AB11old"))
    assert (fresh.access_token, fresh.refresh_token) == ("eyJx", "AB11y")
    assert all("intuit.com" not in call.request.url for call in responses.calls)
    assert len(responses.calls) == 2


@responses.activate
def test_default_discovery_is_intuits_own_document(qbo: Qbo) -> None:
    url = "https://developer.intuit.com/.well-known/openid_configuration/"
    responses.get(url, status=503)
    gateway = AuthGateway(qbo.settings(discovery_url=None, environment="production"))
    with pytest.raises(ConnectorError) as caught:
        gateway.client()
    assert responses.calls[0].request.url == url
    assert caught.value.error_class is ErrorClass.TRANSIENT


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://quickbooks.api.intuit.com/v3", True),
        ("http://127.0.0.1:8080/v3", True),
        ("http://localhost:8080/v3", True),
        ("http://quickbooks.api.intuit.com/v3", False),
        ("ftp://127.0.0.1/v3", False),
    ],
)
def test_plain_http_only_for_a_loopback_sandbox(url: str, ok: bool) -> None:
    if ok:
        assert check_base_url(url) == url
    else:
        with pytest.raises(ConnectorError):
            check_base_url(url)


def test_no_token_or_secret_reaches_the_output(
    qbo: Qbo, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    connector = qbo.connector()
    connector.catalog().preferences()
    qbo.admin("POST", "quickbooks/oauth/expire_access_tokens", {})
    connector.catalog().term_exists("Net 30")
    tokens = stored(qbo)
    qbo.admin("POST", "quickbooks/oauth/revoke", {})
    qbo.admin("POST", "quickbooks/oauth/expire_access_tokens", {})
    with pytest.raises(ConnectorError) as caught:
        connector.catalog().tax_code_exists("TAX")
    captured = capsys.readouterr()
    shown = captured.out + captured.err + caplog.text + str(caught.value) + repr(caught.value)
    secrets = [
        tokens.refresh_token,
        tokens.access_token or "",
        qbo.info["quickbooks_refresh_token"],
        qbo.info["quickbooks_client_secret"],
    ]
    assert all(secret not in shown for secret in secrets)
    assert tokens.refresh_token not in repr(connector.tokens.stored())
