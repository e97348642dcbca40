"""The one vendor session: timeout, forced CA bundle, Decimal JSON, per-thread state."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
import requests

from billsync.core.http import VendorSession

URL = "https://vendor.example/api"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What reached the transport (the send options of each request). The answer
    echoes the request's body, 404 for a URL ending in /missing, with ``X-Seen: <n>``."""
    seen: list[dict[str, Any]] = []

    def fake_send(
        self: requests.Session, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        seen.append(kwargs)
        response = requests.Response()
        response.status_code = 404 if str(request.url).endswith("/missing") else 200
        response.headers["X-Seen"] = str(len(seen))
        body = request.body if isinstance(request.body, bytes) else b'{"amount": 0.1}'
        response._content = body
        return response

    monkeypatch.setattr(requests.Session, "send", fake_send)
    return seen


BUNDLES = [
    # (the session's ca_bundle, verify the caller passed, verify that was sent)
    ("/etc/billsync/ca.pem", None, "/etc/billsync/ca.pem"),
    ("/etc/billsync/ca.pem", "/sdk/own-bundle.pem", "/etc/billsync/ca.pem"),  # stripe-python
    ("/etc/billsync/ca.pem", True, "/etc/billsync/ca.pem"),
    ("/etc/billsync/ca.pem", False, False),  # switched off on purpose: left alone
    (None, "/sdk/own-bundle.pem", "/sdk/own-bundle.pem"),
]


@pytest.mark.parametrize(("bundle", "passed", "expected"), BUNDLES)
def test_the_configured_ca_bundle_is_forced(
    sent: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    bundle: str | None,
    passed: Any,
    expected: Any,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/elsewhere.pem")  # cannot override it either
    session = VendorSession(timeout_s=7, ca_bundle=bundle)
    session.get(URL, **({} if passed is None else {"verify": passed}))
    assert sent[0]["verify"] == expected


@pytest.mark.parametrize(("passed", "expected"), [(None, 7), (3, 3), ((1, 2), (1, 2))])
def test_every_request_has_a_timeout(
    sent: list[dict[str, Any]], passed: Any, expected: Any
) -> None:
    VendorSession(timeout_s=7).get(URL, **({} if passed is None else {"timeout": passed}))
    assert sent[0]["timeout"] == expected


JSON = [
    # (body, decoded, or the error decoding raises)
    (b'{"amount": 0.1, "n": 3}', {"amount": Decimal("0.1"), "n": 3}, None),
    (b'{"big": 1e3}', {"big": Decimal("1E+3")}, None),
    (b'{"x": NaN}', None, "NaN"),
    (b'{"x": Infinity}', None, "Infinity"),
]


@pytest.mark.parametrize(("body", "decoded", "refused"), JSON)
def test_json_numbers_are_decimals_on_every_path(
    sent: list[dict[str, Any]], body: bytes, decoded: Any, refused: str | None
) -> None:
    response = VendorSession().post(URL, data=body)
    if refused:
        with pytest.raises(ValueError, match=refused):
            response.json()
        return
    # simple-salesforce passes parse_float=None explicitly: Decimal is forced anyway.
    assert response.json(parse_float=None) == decoded
    assert all(type(v) is not float for v in response.json().values())


def test_token_and_last_response_are_per_thread(sent: list[dict[str, Any]]) -> None:
    session = VendorSession()
    assert session.access_token == "" and session.last_status is None
    assert dict(session.last_headers) == {}
    session.use_token("main-token")
    session.get(f"{URL}/missing")
    assert session.last_status == 404 and session.last_headers["x-seen"] == "1"
    other: dict[str, Any] = {}

    def in_thread() -> None:
        other["token"] = session.access_token
        other["status"] = session.last_status
        session.use_token("thread-token")
        session.get(URL)
        other["after"] = (session.access_token, session.last_status)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert other == {"token": "", "status": None, "after": ("thread-token", 200)}
    assert session.access_token == "main-token" and session.last_status == 404
    session.use_token("next")  # a new token forgets the last answer
    assert session.last_status is None and dict(session.last_headers) == {}
