"""The ops login under attack (issue 17): guessing the token is limited, counted and
audited; the login page holds nothing derived from the token; sessions live in the
ledger and end for real (logout, revoke, idle time); a short token is refused."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr

from billsync.core.problems import ConfigError
from billsync.sync.ledger.ops_sessions import session_label
from billsync.sync.server.app import ServerParts, create_app
from billsync.sync.server.metrics import Metrics
from billsync.sync.server.ops.auth import hash_session_id
from billsync.sync.server.ops.signing import Signer, ledger_signer
from billsync.sync.server.ops.throttle import LoginThrottle, Refusal, ThrottlePolicy
from tests.ops.conftest import Cli
from tests.server.test_ops_api import CSRF, NOW, TOKEN, Served, ops_server, served, sign_in

__all__ = ["served"]  # the fixture

LOGIN_NONCE = "billsync_ops_login"


def _guess(served: Served, token: str) -> requests.Response:
    browser = requests.Session()
    form = browser.get(f"{served.url}/ops/login", timeout=10)
    data = {"token": token, "csrf_token": CSRF.findall(form.text)[0]}
    return browser.post(f"{served.url}/ops/login", timeout=10, allow_redirects=False, data=data)


def _refusals(served: Served) -> dict[str, float]:
    text = requests.get(f"{served.url}/metrics", timeout=10).text
    counts = {}
    for line in text.splitlines():
        if line.startswith("billsync_ops_login_refusals_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            counts[reason] = float(line.rsplit(" ", 1)[1])
    return counts


def _refusal_audit(served: Served) -> list[str]:
    return [e.details["reason"] for e in served.ledger.audit_for("ops-client:127.0.0.1")]


def test_wrong_tokens_slow_down_then_lock_the_client_out(served: Served) -> None:
    policy = ThrottlePolicy()
    answers = [_guess(served, f"guess-{n:04d}").status_code for n in range(policy.free + 1)]
    assert answers == [401] * (policy.free + 1)
    # Too soon after the sixth: refused unread, even with the right token.
    early = _guess(served, TOKEN)
    assert early.status_code == 429 and early.headers["retry-after"] == "1"
    assert (
        "Too many wrong tokens" in early.text
        and "billsync_ops_session" not in early.headers.get("set-cookie", "")
    )
    # Each wrong token after the free ones doubles the wait, up to the lockout.
    waits = []
    for n in range(policy.free + 1, policy.lockout_after):
        served.clock.now += timedelta(minutes=1)
        assert _guess(served, f"guess-{n:04d}").status_code == 401
        waits.append(int(_guess(served, TOKEN).headers["retry-after"]))
    assert waits[:3] == [2, 4, 8] and waits[-1] == 15 * 60  # the tenth locked the address out
    api = requests.get(f"{served.url}/api/status", headers={"Authorization": f"Bearer {TOKEN}"},
                       timeout=10)  # fmt: skip
    assert api.status_code == 429 and api.json()["error"] == "too_many_attempts"
    served.clock.now += timedelta(minutes=15, seconds=1)
    assert _guess(served, TOKEN).status_code == 303  # the lockout is temporary

    counted = _refusals(served)
    assert counted["wrong_token"] == policy.lockout_after
    assert counted["throttled"] + counted["locked_out"] == 1 + len(waits) + 1
    audited = _refusal_audit(served)
    assert audited.count("wrong_token") == policy.lockout_after
    assert len(audited) == sum(counted.values())


def test_the_overall_limit_holds_across_addresses() -> None:
    throttle = LoginThrottle(ThrottlePolicy(overall_limit=20))
    for n in range(20):
        assert throttle.check(f"10.0.0.{n}", NOW) is None
        throttle.failed(f"10.0.0.{n}", NOW)
    wait = throttle.check("192.0.2.7", NOW)  # a client never seen before
    assert wait is not None and wait.reason is Refusal.OVERALL
    assert throttle.check("192.0.2.7", NOW + timedelta(minutes=15, seconds=1)) is None


def test_the_login_page_is_no_offline_oracle(served: Served) -> None:
    """The form's signed nonce is keyed by the ledger's random key: neither the token
    nor a guess verifies it, so a GET says nothing about any guess."""
    browser = requests.Session()
    form = browser.get(f"{served.url}/ops/login", timeout=10)
    nonce, signed = browser.cookies[LOGIN_NONCE], CSRF.findall(form.text)[0]
    assert TOKEN not in form.text
    for guess in (TOKEN, "guess-0001", TOKEN[:-1]):
        # The old derivation: an HMAC key made from the token.
        old_key = hmac.new(guess.encode(), b"billsync ops signing key v1", hashlib.sha256)
        assert Signer(old_key.digest()).sign("login", nonce) != signed
        assert not Signer(guess.encode().ljust(16, b"\0")).verify("login", nonce, signed)
    assert ledger_signer(served.ledger).verify("login", nonce, signed)


def test_logout_ends_the_session_for_a_copied_cookie(served: Served) -> None:
    browser = sign_in(served)
    copied = browser.cookies["billsync_ops_session"]
    page = browser.get(f"{served.url}/ops/failures", timeout=10)
    logout = browser.post(f"{served.url}/ops/logout", timeout=10, allow_redirects=False,
                          data={"csrf_token": CSRF.findall(page.text)[0]})  # fmt: skip
    assert logout.status_code == 303
    replay = requests.get(f"{served.url}/ops/failures", timeout=10, allow_redirects=False,
                          cookies={"billsync_ops_session": copied})  # fmt: skip
    assert replay.status_code == 303 and replay.headers["location"].startswith("/ops/login")
    label = session_label(hash_session_id(copied))
    assert [e.action for e in served.ledger.audit_for(f"ops-session:{label}")] == [
        "ops.login", "ops.logout"]  # fmt: skip


def test_a_session_ends_after_the_idle_time(served: Served) -> None:
    browser = sign_in(served)
    for _ in range(3):  # used every 20 minutes: stays signed in past 30
        served.clock.now += timedelta(minutes=20)
        assert browser.get(f"{served.url}/ops/failures", timeout=10).status_code == 200
    served.clock.now += timedelta(minutes=30, seconds=1)
    page = browser.get(f"{served.url}/ops/failures", timeout=10, allow_redirects=False)
    assert page.status_code == 303
    served.clock.now -= timedelta(minutes=5)  # ended for good, not merely not seen
    assert browser.get(f"{served.url}/ops/failures", timeout=10,
                       allow_redirects=False).status_code == 303  # fmt: skip
    [ended] = served.ledger.ops_sessions(idle=timedelta(minutes=30), lifetime=timedelta(hours=12),
                                         include_ended=True)  # fmt: skip
    assert ended.revoked_by == "idle"


def test_an_operator_lists_and_revokes_sessions(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, revoked = sign_in(served), sign_in(served)
    label = session_label(hash_session_id(revoked.cookies["billsync_ops_session"]))
    cli = Cli(served.ledger_url, monkeypatch)
    listed = cli.json("sessions", "list", "--all", "--json")
    assert label in {row["label"] for row in listed} and len(listed) == 2
    assert {row["client"] for row in listed} == {"127.0.0.1"}
    done = cli("sessions", "revoke", label, "--actor", "cli:ana")
    assert done.exit_code == 0 and f"revoked {label}" in done.stdout
    assert revoked.get(f"{served.url}/ops/failures", timeout=10,
                       allow_redirects=False).status_code == 303  # fmt: skip
    assert kept.get(f"{served.url}/ops/failures", timeout=10).status_code == 200
    [entry] = [
        e for e in served.ledger.audit_for(f"ops-session:{label}") if e.action != "ops.login"
    ]
    assert (entry.actor, entry.action) == ("cli:ana", "ops.session_revoked")
    assert cli("sessions", "revoke", label).exit_code == 2  # already ended
    assert cli("sessions", "revoke", "zz").exit_code == 2
    assert cli("sessions", "revoke").exit_code == 2
    assert cli("sessions", "revoke", "--all").exit_code == 0
    assert kept.get(f"{served.url}/ops/failures", timeout=10,
                    allow_redirects=False).status_code == 303  # fmt: skip


def test_a_short_token_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ops_server(tmp_path) as served:
        parts = ServerParts(ledger=served.ledger, verifiers={},
                            metrics=Metrics(served.ledger), max_body_bytes=1 << 20,
                            ops_token=SecretStr("x" * 31))  # fmt: skip
        with pytest.raises(ValueError, match="openssl rand -hex 32"):
            create_app(parts)
        create_app(ServerParts(**{**parts.__dict__, "ops_token": SecretStr("x" * 32)}))
        cli = Cli(served.ledger_url, monkeypatch)
        monkeypatch.setenv("BILLSYNC_OPS__TOKEN", "short-token-0123456789")
        with pytest.raises(ConfigError) as refused:  # the CLI's exit 2, before listening
            cli("serve", "--port", "1")
    assert "ops.token" in str(refused.value) and "openssl rand -hex 32" in str(refused.value)
    assert "short-token-0123456789" not in str(refused.value)
