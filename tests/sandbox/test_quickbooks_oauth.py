"""Intuit OAuth against the sandbox with the unmodified intuitlib and python-quickbooks."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks.exceptions import AuthorizationException
from quickbooks.objects.customer import Customer

from tests.sandbox.quickbooks_support import QboEnv, qbo_sandbox


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QboEnv]:
    with qbo_sandbox(tmp_path_factory.mktemp("qbo-oauth")) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(env: QboEnv) -> None:
    env.admin("POST", "reset")
    env.admin("POST", "quickbooks/oauth/config", {"refresh_grace_s": 60})


def test_discovery_points_at_the_sandbox(env: QboEnv) -> None:
    auth = env.auth_client()
    assert auth.token_endpoint == env.info["token_url"]
    assert auth.token_endpoint.startswith(env.url)
    for url in (auth.auth_endpoint, auth.revoke_endpoint, auth.jwks_uri, auth.user_info_url):
        assert url.startswith(env.url)
    production = requests.get(f"{env.url}/.well-known/openid_configuration", timeout=5).json()
    assert production["token_endpoint"] == auth.token_endpoint


def test_refresh_rotates_and_the_old_token_dies_after_the_grace(env: QboEnv) -> None:
    auth = env.auth_client()
    first = env.info["quickbooks_refresh_token"]
    auth.refresh(refresh_token=first)
    second = auth.refresh_token
    assert second != first
    assert auth.expires_in == 3600
    assert auth.x_refresh_token_expires_in == 8_726_400
    assert auth.access_token
    # Within the grace the superseded token still works (and rotates again) ...
    auth.refresh(refresh_token=first)
    third = auth.refresh_token
    assert third not in (first, second)
    # ... after it, invalid_grant.
    env.admin("POST", "clock", {"advance_s": 61})
    with pytest.raises(AuthClientError) as caught:
        auth.refresh(refresh_token=first)
    assert caught.value.status_code == 400
    assert b"invalid_grant" in caught.value.content
    auth.refresh(refresh_token=second)  # rotated tokens each have their own grace
    auth.refresh(refresh_token=auth.refresh_token)


def test_until_successor_used_mode(env: QboEnv) -> None:
    env.admin("POST", "quickbooks/oauth/config", {"refresh_grace_s": None})
    auth = env.auth_client()
    first = env.info["quickbooks_refresh_token"]
    auth.refresh(refresh_token=first)
    second = auth.refresh_token
    env.admin("POST", "clock", {"advance_s": 3600})
    auth.refresh(refresh_token=first)  # successor not used yet: still valid
    auth.refresh(refresh_token=second)
    with pytest.raises(AuthClientError):
        auth.refresh(refresh_token=first)


def test_revoked_and_unknown_tokens_are_invalid_grant(env: QboEnv) -> None:
    auth = env.auth_client()
    with pytest.raises(AuthClientError) as caught:
        auth.refresh(refresh_token="AB11-not-a-token")
    assert caught.value.status_code == 400
    token = env.info["quickbooks_refresh_token"]
    env.admin("POST", "quickbooks/oauth/revoke", {"token": token})
    with pytest.raises(AuthClientError) as caught:
        auth.refresh(refresh_token=token)
    assert b"invalid_grant" in caught.value.content


def test_bad_client_secret_is_invalid_client(env: QboEnv) -> None:
    auth = env.auth_client()
    auth.client_secret = "wrong"
    with pytest.raises(AuthClientError) as caught:
        auth.refresh(refresh_token=env.info["quickbooks_refresh_token"])
    assert caught.value.status_code == 401


def test_authorization_code_flow(env: QboEnv) -> None:
    auth = env.auth_client()
    url = auth.get_authorization_url([Scopes.ACCOUNTING], state_token="xyz")
    redirect = requests.get(url, allow_redirects=False, timeout=5)
    assert redirect.status_code == 302
    query = parse_qs(urlparse(redirect.headers["location"]).query)
    assert query["state"] == ["xyz"]
    assert query["realmId"] == [env.realm_id]
    auth.get_bearer_token(query["code"][0], realm_id=query["realmId"][0])
    assert auth.access_token and auth.refresh_token
    with pytest.raises(AuthClientError):  # codes are single-use
        auth.get_bearer_token(query["code"][0])
    minted = env.admin("POST", "quickbooks/oauth/code", {})["code"]
    auth.get_bearer_token(minted)


def test_expired_access_token_is_401_and_revoke_disconnects(env: QboEnv) -> None:
    qb = env.client()
    Customer.count(qb=qb)
    env.admin("POST", "clock", {"advance_s": 3601})
    with pytest.raises(AuthorizationException) as caught:
        Customer.count(qb=qb)
    assert caught.value.error_code == 401
    raw = requests.get(
        f"{env.url}/v3/company/{env.realm_id}/customer/1",
        headers={"Authorization": f"Bearer {qb.auth_client.access_token}"},
        timeout=5,
    )
    assert raw.json()["Fault"]["Error"][0]["code"] == "3200"
    assert raw.json()["Fault"]["type"] == "AUTHENTICATION"

    fresh = env.client(refresh_token=qb.refresh_token)
    Customer.count(qb=fresh)
    env.admin("POST", "quickbooks/oauth/expire_access_tokens", {})
    with pytest.raises(AuthorizationException):
        Customer.count(qb=fresh)

    again = env.client(refresh_token=fresh.refresh_token)
    assert again.auth_client.revoke(token=again.refresh_token)
    with pytest.raises(AuthorizationException):
        Customer.count(qb=again)
    with pytest.raises(AuthClientError):
        again.auth_client.refresh(refresh_token=again.refresh_token)


def test_a_token_for_another_company_is_403(env: QboEnv) -> None:
    qb = env.client()
    response = requests.get(
        f"{env.url}/v3/company/123/customer/1",
        headers={"Authorization": f"Bearer {qb.auth_client.access_token}"},
        timeout=5,
    )
    assert response.status_code == 403
    assert response.json()["Fault"]["Error"][0]["code"] == "3100"


def test_reset_revives_the_bootstrap_token(env: QboEnv) -> None:
    auth = env.auth_client()
    token = env.info["quickbooks_refresh_token"]
    auth.refresh(refresh_token=token)
    env.admin("POST", "clock", {"advance_s": 120})
    with pytest.raises(AuthClientError):
        auth.refresh(refresh_token=token)
    env.admin("POST", "reset")
    auth.refresh(refresh_token=token)
