"""The ops JSON API and the ops pages' protections on a live server (uvicorn on
127.0.0.1) over a real SQLite ledger holding known failures (tests/ops
`seed_failures`), the hand-built AR book (tests/ops/ar_fixture.py), runs and a
QuickBooks connection.

- off without ``ops.token`` (404 and the sentence saying how to turn it on);
- the Bearer token on every API call (401 otherwise), compared with
  `hmac.compare_digest`;
- the same JSON documents as the CLI's ``--json`` (every field, money as strings);
- retry and resolve audited as ``ops-api`` / ``ops-web:<session>``;
- the login form, the session cookie's flags, CSRF refusals (403), and no secret in
  any response.
"""

from __future__ import annotations

import dataclasses
import hmac
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
from pydantic import SecretStr

from billsync.connectors.quickbooks import QboWebhookVerifier
from billsync.connectors.quickbooks.tokens import TokenSet
from billsync.connectors.stripe.webhooks import StripeWebhookVerifier
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head, work_subject
from billsync.sync.ledger.ops_sessions import session_label
from billsync.sync.server.app import ServerParts, create_app
from billsync.sync.server.metrics import Metrics
from billsync.sync.server.ops.auth import hash_session_id
from billsync.sync.server.ops.throttle import ThrottlePolicy
from tests.ops.ar_fixture import build_book
from tests.ops.conftest import Cli, Clock
from tests.ops.test_failures_cli import FIELDS, seed_failures
from tests.server.live import serving
from tests.server.test_webhook_receiver import QBO_TOKEN, REALM, STRIPE_SECRET

TOKEN = "ops-token-7d1c9a3e5f0b2468-4e1a9c0d27b3f865"
ACCESS = "eyJhbGciOiJIUzI1NiJ9.OPS-ACCESS-TOKEN-5521"
REFRESH = "AB11-OPS-REFRESH-TOKEN-9083"
SECRETS = (TOKEN, STRIPE_SECRET, QBO_TOKEN, ACCESS, REFRESH)
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LENIENT = ThrottlePolicy(free=1000, lockout_after=1000, overall_limit=10_000)
"""For tests that try many wrong tokens on purpose (test_ops_sessions tests the limit)."""


@dataclasses.dataclass
class Served:
    url: str
    ledger: Ledger
    ledger_url: str
    clock: Clock
    ids: dict[str, int]

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {**AUTH, **kw.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kw)

    def actions(self, item_id: int) -> list[Any]:
        return [
            e for e in self.ledger.audit_for(work_subject(item_id)) if e.action != "work.failed"
        ]


def seed(ledger: Ledger) -> dict[str, int]:
    """Failures, the AR book with its discrepancies, two runs, a QuickBooks company."""
    ids = seed_failures(ledger)
    build_book(ledger)
    first = ledger.start_run(NOW - timedelta(hours=2))
    ledger.finish_run(first, "clean", {"deals_seen": 10, "invoices_created": 10,
                                       "duration_s": 4.2}, NOW - timedelta(hours=2))  # fmt: skip
    second = ledger.start_run(NOW - timedelta(hours=1))
    ledger.finish_run(second, "failures", {"deals_seen": 4, "failures": 4, "duration_s": 1.5},
                      NOW - timedelta(hours=1))  # fmt: skip
    tokens = TokenSet(
        refresh_token=REFRESH, access_token=ACCESS, access_expires_at=NOW + timedelta(minutes=40),
        refresh_expires_at=NOW + timedelta(days=60), refresh_issued_at=NOW - timedelta(days=40),
        connected_at=NOW - timedelta(days=400),
    )  # fmt: skip
    assert ledger.save_credentials(f"quickbooks:{REALM}", tokens.to_data(), None)
    return ids


@contextmanager
def ops_server(tmp_path: Path, token: str | None = TOKEN, **parts: Any) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'billsync.db'}"
    db = create_ledger_engine(url)
    upgrade_to_head(db)
    clock = Clock(NOW)
    ledger = Ledger(db, clock=clock)
    ids = seed(ledger)
    verifiers = {
        "stripe": StripeWebhookVerifier([SecretStr(STRIPE_SECRET)], api_version=stripe.api_version),
        "quickbooks": QboWebhookVerifier([QBO_TOKEN], REALM),
    }
    app = create_app(
        ServerParts(
            ledger=ledger, verifiers=verifiers, metrics=Metrics(ledger, now=clock),
            max_body_bytes=1 << 20, ops_token=SecretStr(token) if token else None, clock=clock,
            **parts,
        )
    )  # fmt: skip
    try:
        with serving(app) as base:
            yield Served(base, ledger, url, clock, ids)
    finally:
        db.dispose()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with ops_server(tmp_path) as found:
        yield found


def sign_in(served: Served, **headers: str) -> requests.Session:
    """A browser-like session that signed in through the login form."""
    browser = requests.Session()
    form = browser.get(f"{served.url}/ops/login", timeout=10, headers=headers)
    assert form.status_code == 200
    answer = browser.post(
        f"{served.url}/ops/login", timeout=10, allow_redirects=False, headers=headers,
        data={"token": TOKEN, "csrf_token": CSRF.findall(form.text)[0], "next": "/ops/runs"},
    )  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/ops/runs"
    return browser


def csrf_of(browser: requests.Session, url: str) -> str:
    page = browser.get(url, timeout=10)
    assert page.status_code == 200
    return CSRF.findall(page.text)[0]


API_CALLS = [
    ("GET", "/api/failures", None),
    ("GET", "/api/failures/1", None),
    ("POST", "/api/failures/1/retry", None),
    ("POST", "/api/failures/retry", {"ids": [1]}),
    ("POST", "/api/failures/1/resolve", {"note": "fixed"}),
    ("GET", "/api/discrepancies", None),
    ("GET", "/api/status", None),
    ("GET", "/api/reports/aging", None),
    ("GET", "/api/reports/kpis", None),
]


# --- on and off, in and out --------------------------------------------------------------


def test_without_a_token_the_pages_and_api_are_off(tmp_path: Path) -> None:
    with ops_server(tmp_path, token=None) as served:
        for method, path, body in API_CALLS:
            answer = served.api(method, path, json=body)
            assert answer.status_code == 404, path
            assert answer.json()["error"] == "not_enabled"
            assert "set ops.token" in answer.json()["message"]
            assert "BILLSYNC_OPS__TOKEN_FILE" in answer.json()["message"]
        for path in ("/ops", "/ops/login", "/ops/failures", "/ops/reports/aging"):
            page = requests.get(f"{served.url}{path}", timeout=10, allow_redirects=False)
            assert page.status_code == 404, path
            assert "set ops.token in the configuration" in page.text
        refused = requests.post(f"{served.url}/ops/login", data={"token": ""}, timeout=10)
        assert refused.status_code == 404
        assert requests.get(f"{served.url}/healthz", timeout=10).status_code == 200
        assert served.actions(served.ids["inactive"]) == []


def test_the_api_needs_the_bearer_token(tmp_path: Path) -> None:
    with ops_server(tmp_path, ops_login_limits=LENIENT) as served:
        _api_needs_the_token(served)


def _api_needs_the_token(served: Served) -> None:
    for method, path, body in API_CALLS:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": f"Bearer {TOKEN[:-1]}"},  # a prefix is not the token
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN},
        ):
            answer = requests.request(method, f"{served.url}{path}", json=body,
                                      headers=headers, timeout=10)  # fmt: skip
            assert answer.status_code == 401, (path, headers)
            assert answer.json()["error"] == "unauthorized"
            assert answer.headers["www-authenticate"].startswith("Bearer")
    assert served.actions(served.ids["inactive"]) == []  # nothing happened
    for method, path, _ in API_CALLS:
        if method == "GET":
            assert served.api(method, path).status_code == 200, path


def test_the_token_is_compared_in_constant_time(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert (
        served.api("GET", "/api/status", headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert (b"nope", TOKEN.encode()) in seen
    seen.clear()
    assert served.api("GET", "/api/status").status_code == 200
    assert (TOKEN.encode(), TOKEN.encode()) in seen
    seen.clear()
    form = requests.get(f"{served.url}/ops/login", timeout=10)
    requests.post(f"{served.url}/ops/login", cookies=form.cookies, timeout=10, data={
        "token": "typed-wrong", "csrf_token": CSRF.findall(form.text)[0]})  # fmt: skip
    assert (b"typed-wrong", TOKEN.encode()) in seen


# --- the same documents as the CLI ------------------------------------------------------


def test_failures_are_the_cli_documents(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = Cli(served.ledger_url, monkeypatch)
    rows = served.api("GET", "/api/failures").json()
    assert rows == cli.json("failures", "list", "--json")
    assert {row["id"] for row in rows} == {
        served.ids[n] for n in ("inactive", "flaky", "writeback", "rejected")}  # fmt: skip
    for row in rows:
        assert set(row) >= FIELDS, FIELDS - set(row)
    for query, cli_args in (
        ("status=dead", ("--status", "dead")),
        ("target=stripe", ("--target", "stripe")),
        ("class=transient", ("--class", "transient")),
        ("since=2026-03-31T11:00:00Z", ("--since", "2026-03-31T11:00:00Z")),
        ("status=resolved", ("--status", "resolved")),
    ):
        answer = served.api("GET", f"/api/failures?{query}")
        assert answer.status_code == 200
        assert answer.json() == cli.json("failures", "list", "--json", *cli_args), query
    assert served.api("GET", "/api/failures?since=2026-04-01").json() == []
    assert served.api("GET", "/api/failures?status=broken").status_code == 422
    assert served.api("GET", "/api/failures?since=yesterday").status_code == 422

    for name in ("inactive", "rejected", "writeback"):
        item_id = served.ids[name]
        detail = served.api("GET", f"/api/failures/{item_id}").json()
        assert detail == cli.json("failures", "show", str(item_id), "--json")
        assert set(detail) >= FIELDS | {"advice", "attempted", "deal", "attempt_history", "audit"}
    inactive = served.api("GET", f"/api/failures/{served.ids['inactive']}").json()
    assert "QuickBooks item 'SKU-9' is inactive or deleted" in inactive["advice"]["sentence"]
    for item_id in (served.ids["routine"], served.ids["done"], 424242):
        missing = served.api("GET", f"/api/failures/{item_id}")
        assert missing.status_code == 404
        assert missing.json() == {
            "error": "not_found",
            "message": f"no failure with id {item_id}; see billsync failures list",
        }


def _without_clock(status: dict[str, Any]) -> dict[str, Any]:
    """The parts of a status document that do not depend on when it was taken."""
    return {
        "runs": [{k: v for k, v in run.items() if k != "age_s"} for run in status["runs"]],
        "run_lease": status["run_lease"],
        "queue": status["queue"],
        "discrepancies": status["discrepancies"],
        "inbox": status["inbox"]["by_status"],
        "cursors": [c["name"] for c in status["cursors"]],
        "realms": [c["realm_id"] for c in status["credentials"]["quickbooks"]],
    }


def test_reports_and_status_are_the_cli_documents(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = Cli(served.ledger_url, monkeypatch)
    for query, args in (
        ("as_of=2026-03-31", ("--as-of", "2026-03-31")),
        ("as_of=2026-03-31&by=customer", ("--as-of", "2026-03-31", "--by", "customer")),
        ("as_of=2026-02-15&currency=EUR", ("--as-of", "2026-02-15", "--currency", "EUR")),
    ):
        aging = served.api("GET", f"/api/reports/aging?{query}").json()
        assert aging == cli.json("report", "aging", "--json", *args), query
    aging = served.api("GET", "/api/reports/aging").json()  # as of the server's today
    assert aging["as_of"] == "2026-03-31"
    assert aging["currencies"]["USD"] == {
        "current": "720.00",
        "1-30": "0.00",
        "31-60": "1750.00",
        "61-90": "0.00",
        "90+": "350.00",
        "total": "2820.00",
    }  # fmt: skip (the hand-computed figures of tests/ops/test_ar_reports.py)
    assert aging["currencies"]["JPY"]["total"] == "130000"
    assert "customers" not in aging

    for query, args in (
        ("as_of=2026-03-31", ("--as-of", "2026-03-31")),
        ("as_of=2026-03-31&days=30&currency=USD",
         ("--as-of", "2026-03-31", "--days", "30", "--currency", "USD")),
    ):  # fmt: skip
        kpis = served.api("GET", f"/api/reports/kpis?{query}").json()
        assert kpis == cli.json("report", "kpis", "--json", *args), query
    usd = served.api("GET", "/api/reports/kpis?as_of=2026-03-31").json()["currencies"]["USD"]
    assert (usd["ar"], usd["dso_days"], usd["write_offs"]) == (
        "2820.00", "56.2", {"count": 1, "amount": "4000.00"})  # fmt: skip

    for bad in ("as_of=31.03.2026", "as_of=2026-02-30", "as_of=1969-12-31", "currency=usdx",
                "days=0"):  # fmt: skip
        assert served.api("GET", f"/api/reports/kpis?{bad}").status_code == 422, bad

    status = served.api("GET", "/api/status").json()
    assert status["as_of"] == "2026-03-31T12:00:00+00:00"  # the server's clock
    from_cli = cli.json("status", "--json", code=1)
    assert set(status) == set(from_cli)
    assert _without_clock(status) == _without_clock(from_cli)
    assert [run["outcome"] for run in status["runs"]] == ["failures", "clean"]

    discrepancies = served.api("GET", "/api/discrepancies").json()
    assert [(d["kind"], d["deal_id"]) for d in discrepancies] == [
        ("invoice_total_mismatch", "deal-U2"), ("invoice_total_mismatch", "deal-U3"),
        ("partial_payment", "deal-J1"),
    ]  # fmt: skip
    assert discrepancies[0] | {"expected": "2500.00", "actual": "2400.00"} == discrepancies[0]
    only = served.api("GET", "/api/discrepancies?kind=partial_payment").json()
    assert [d["deal_id"] for d in only] == ["deal-J1"]
    assert served.api("GET", "/api/discrepancies?kind=nonsense").status_code == 422


# --- acting ------------------------------------------------------------------------------


def test_retry_and_resolve_through_the_api_are_audited(served: Served) -> None:
    inactive, writeback = served.ids["inactive"], served.ids["writeback"]
    answer = served.api("POST", f"/api/failures/{inactive}/retry", json={"note": "reactivated"})
    assert answer.status_code == 200
    assert answer.json() == {"action": "retry", "actor": "ops-api", "items": [
        {"id": inactive, "done": True, "status_before": "dead", "status_after": "pending",
         "reason": None}]}  # fmt: skip
    [entry] = served.actions(inactive)
    assert (entry.actor, entry.action, entry.details["note"]) == (
        "ops-api", "work.retry", "reactivated")  # fmt: skip
    item = served.ledger.get_work(inactive)
    assert item is not None and (item.status, item.attempts) == ("pending", 0)

    for body in ({}, {"note": ""}, {"note": "   "}, {"note": "ok", "extra": 1}):
        refused = served.api("POST", f"/api/failures/{writeback}/resolve", json=body)
        assert refused.status_code == 422, body
    assert served.api("POST", f"/api/failures/{writeback}/resolve").status_code == 422
    assert served.actions(writeback) == []
    done = served.api("POST", f"/api/failures/{writeback}/resolve",
                      json={"note": "fixed the rule by hand"})  # fmt: skip
    assert done.status_code == 200 and done.json()["items"][0]["status_after"] == "resolved"
    [entry] = served.actions(writeback)
    assert (entry.actor, entry.action, entry.details["note"]) == (
        "ops-api", "work.resolve", "fixed the rule by hand")  # fmt: skip
    again = served.api("POST", f"/api/failures/{writeback}/resolve", json={"note": "twice"})
    assert again.status_code == 409
    assert again.json() == {"error": "conflict",
                            "message": f"failure {writeback} was not resolved: it is already "
                            "resolved"}  # fmt: skip
    for item_id in (424242, served.ids["routine"]):
        assert served.api("POST", f"/api/failures/{item_id}/retry").status_code == 404

    flaky = served.ids["flaky"]
    unknown = served.api("POST", "/api/failures/retry", json={"ids": [flaky, 424242]})
    assert unknown.status_code == 404 and "nothing was retried" in unknown.json()["message"]
    assert served.actions(flaky) == []  # a typo changes nothing at all
    for body in ({"ids": [flaky], "all": True}, {"ids": []}, {}, {"all": False},
                 {"ids": [flaky], "class": "transient"}):  # fmt: skip
        assert served.api("POST", "/api/failures/retry", json=body).status_code == 422, body
    everything = served.api("POST", "/api/failures/retry",
                            json={"all": True, "class": "invalid_data"})  # fmt: skip
    assert everything.status_code == 200
    retried = {item["id"] for item in everything.json()["items"] if item["done"]}
    assert retried == {inactive, served.ids["rejected"]}  # the write-back is resolved now
    assert served.actions(flaky) == []  # another class
    several = served.api("POST", "/api/failures/retry", json={"ids": [flaky, writeback]})
    assert [item["status_after"] for item in several.json()["items"]] == ["pending", "pending"]


# --- the pages' session and CSRF ----------------------------------------------------------


def test_login_sets_a_safe_session_cookie(served: Served) -> None:
    page = requests.get(f"{served.url}/ops/failures", timeout=10, allow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/ops/login?next=/ops/failures"

    form = requests.get(f"{served.url}/ops/login?next=/ops/runs", timeout=10)
    token = CSRF.findall(form.text)[0]
    wrong = requests.post(f"{served.url}/ops/login", cookies=form.cookies, timeout=10,
                          data={"token": "guess-0042", "csrf_token": token})  # fmt: skip
    assert wrong.status_code == 401
    assert "That is not the ops token" in wrong.text and "guess-0042" not in wrong.text
    assert "billsync_ops_session" not in wrong.headers.get("set-cookie", "")

    login = {"token": TOKEN, "csrf_token": token, "next": "/ops/runs"}
    right = requests.post(f"{served.url}/ops/login", cookies=form.cookies, timeout=10,
                          allow_redirects=False, data=login)  # fmt: skip
    assert right.status_code == 303 and right.headers["location"] == "/ops/runs"
    cookie = next(c for c in right.raw.headers.getlist("set-cookie") if "ops_session=" in c)
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/ops" in flags
    assert "secure" not in flags  # plain http here
    value = right.cookies["billsync_ops_session"]
    assert TOKEN not in value and len(value) > 40

    # Where to go afterwards is only ever one of our pages.
    browser = requests.Session()
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "/api/status"):
        form = browser.get(f"{served.url}/ops/login", timeout=10)
        back = browser.post(f"{served.url}/ops/login", timeout=10, allow_redirects=False,
                            data={"token": TOKEN, "csrf_token": CSRF.findall(form.text)[0],
                                  "next": target})  # fmt: skip
        assert back.headers["location"] == "/ops/failures", target
        browser.cookies.clear()


def test_the_cookie_is_secure_behind_https(tmp_path: Path) -> None:
    with ops_server(tmp_path) as served:
        # uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (a TLS-terminating proxy).
        form = requests.get(f"{served.url}/ops/login", timeout=10,
                            headers={"X-Forwarded-Proto": "https"})  # fmt: skip
        assert "secure" in form.headers["set-cookie"].lower()
    with ops_server(tmp_path / "forced", ops_secure_cookie=True) as served:
        form = requests.get(f"{served.url}/ops/login", timeout=10)
        assert "secure" in form.headers["set-cookie"].lower()


def test_sessions_expire_and_cannot_be_forged(served: Served) -> None:
    browser = sign_in(served)
    assert browser.get(f"{served.url}/ops/failures", timeout=10).status_code == 200
    sid = browser.cookies["billsync_ops_session"]
    for forged in (f"{sid}x", sid[:-1], hash_session_id(sid), "garbage", TOKEN, "x" * 4000):
        page = requests.get(f"{served.url}/ops/failures", timeout=10, allow_redirects=False,
                            cookies={"billsync_ops_session": forged})  # fmt: skip
        assert page.status_code == 303, forged
    served.clock.now = NOW + timedelta(hours=12, minutes=1)  # idle, and past the lifetime
    page = browser.get(f"{served.url}/ops/failures", timeout=10, allow_redirects=False)
    assert page.status_code == 303


def test_forms_without_a_valid_csrf_token_are_refused(served: Served) -> None:
    inactive = served.ids["inactive"]
    browser = sign_in(served)
    other = sign_in(served)
    foreign = csrf_of(other, f"{served.url}/ops/failures/{inactive}")
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "x" * 43}, {"csrf_token": foreign}):
        for action in ("retry", "resolve"):
            answer = browser.post(f"{served.url}/ops/failures/{inactive}/{action}",
                                  data={**data, "note": "n"}, timeout=10,
                                  allow_redirects=False)  # fmt: skip
            assert answer.status_code == 403, (action, data)
            assert "reload the page" in answer.text
        assert browser.post(f"{served.url}/ops/logout", data=data, timeout=10).status_code == 403
    assert served.actions(inactive) == []
    form = requests.get(f"{served.url}/ops/login", timeout=10)
    login_token = CSRF.findall(form.text)[0]
    no_cookie = requests.post(f"{served.url}/ops/login", timeout=10,
                              data={"token": TOKEN, "csrf_token": login_token})  # fmt: skip
    assert no_cookie.status_code == 403
    no_field = requests.post(f"{served.url}/ops/login", cookies=form.cookies, timeout=10,
                             data={"token": TOKEN})  # fmt: skip
    assert no_field.status_code == 403
    # Without a session at all, a post goes to the login form and changes nothing.
    anonymous = requests.post(f"{served.url}/ops/failures/{inactive}/retry", timeout=10,
                              allow_redirects=False, data={"csrf_token": foreign})  # fmt: skip
    assert anonymous.status_code == 303
    assert served.actions(inactive) == []


def test_page_buttons_act_as_the_session_and_say_what_happened(served: Served) -> None:
    inactive, writeback = served.ids["inactive"], served.ids["writeback"]
    browser = sign_in(served)
    detail = f"{served.url}/ops/failures/{inactive}"
    token = csrf_of(browser, detail)
    after = browser.post(f"{detail}/retry", data={"csrf_token": token,
                         "next": f"/ops/failures/{inactive}"}, timeout=10)  # fmt: skip
    assert after.status_code == 200 and after.url == detail
    assert f"Failure {inactive} is queued for the next run (dead → pending" in after.text
    [entry] = served.actions(inactive)
    sid = session_label(hash_session_id(browser.cookies["billsync_ops_session"]))
    assert entry.actor == f"ops-web:{sid}" and entry.action == "work.retry"
    assert f"ops-web:{sid}" in after.text  # the audit trail on the page
    assert "queued for the next run" not in browser.get(detail, timeout=10).text  # one-shot

    page = f"{served.url}/ops/failures/{writeback}"
    blank = browser.post(f"{page}/resolve", data={"csrf_token": token, "note": "  "}, timeout=10)
    assert "Resolving needs a note saying why." in blank.text
    assert served.actions(writeback) == []
    done = browser.post(f"{page}/resolve", timeout=10,
                        data={"csrf_token": token, "note": "<b>fixed</b> by hand"})  # fmt: skip
    assert f"Failure {writeback} is resolved." in done.text
    assert "&lt;b&gt;fixed&lt;/b&gt; by hand" in done.text  # escaped, never markup
    [entry] = served.actions(writeback)
    assert entry.details["note"] == "<b>fixed</b> by hand"
    again = browser.post(f"{page}/resolve", data={"csrf_token": token, "note": "x"}, timeout=10)
    assert f"Failure {writeback} was not resolved: it is already resolved." in again.text

    missing = browser.get(f"{served.url}/ops/failures/424242", timeout=10)
    assert missing.status_code == 404 and "no failure with id 424242" in missing.text.lower()
    out = browser.post(f"{served.url}/ops/logout", data={"csrf_token": token}, timeout=10)
    assert out.url.endswith("/ops/login") and "Signed out." in out.text
    page_after = browser.get(f"{served.url}/ops/failures", timeout=10, allow_redirects=False)
    assert page_after.status_code == 303


def test_pages_show_the_ledger_and_no_secret_anywhere(served: Served) -> None:
    browser = sign_in(served)
    failures = browser.get(f"{served.url}/ops/failures", timeout=10).text
    for name in ("inactive", "flaky", "writeback", "rejected"):
        assert f'id="failure-{served.ids[name]}"' in failures
    assert f'id="failure-{served.ids["routine"]}"' not in failures
    dead = browser.get(f"{served.url}/ops/failures?status=dead&class=invalid_data", timeout=10)
    assert f'id="failure-{served.ids["flaky"]}"' not in dead.text
    bad = browser.get(f"{served.url}/ops/failures?since=soon&status=nope", timeout=10)
    assert bad.status_code == 200 and "&#39;nope&#39; is not a status" in bad.text
    assert "not an ISO date" in bad.text

    runs = browser.get(f"{served.url}/ops/runs", timeout=10).text
    assert "failures" in runs and "clean" in runs and "Salesforce API" in runs
    found = browser.get(f"{served.url}/ops/discrepancies", timeout=10).text
    assert "deal-U2" in found and "deal-J1" in found and "deal-E1" not in found  # E1 resolved
    aging = browser.get(f"{served.url}/ops/reports/aging?as_of=2026-03-31", timeout=10).text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="aging-chart"' in aging
    assert "2820.00" in aging and "130000" in aging
    wrong = browser.get(f"{served.url}/ops/reports/aging?as_of=tomorrow&currency=XXY", timeout=10)
    assert wrong.status_code == 200 and "is not a date" in wrong.text

    pages = ["/ops/login", "/ops/failures", "/ops/failures?status=all", "/ops/discrepancies",
             "/ops/runs", "/ops/reports/aging?by=customer", "/openapi.json", "/metrics",
             *(f"/ops/failures/{item_id}" for item_id in served.ids.values())]  # fmt: skip
    answers = [browser.get(f"{served.url}{path}", timeout=10) for path in pages]
    answers += [served.api(m, p, json=b) for m, p, b in API_CALLS if m == "GET"]
    answers += [served.api("GET", f"/api/failures/{item_id}") for item_id in served.ids.values()]
    for answer in answers:
        shown = answer.text + " ".join(f"{k}: {v}" for k, v in answer.headers.items())
        for secret in SECRETS:
            assert secret not in shown, (answer.url, secret)
    for answer in answers[: -len(served.ids)]:
        if answer.url.startswith(f"{served.url}/ops/"):
            assert answer.headers["content-security-policy"].startswith("default-src 'none'")


# --- discrepancies: acknowledge and resolve -----------------------------------------------


def _discrepancy_audit(served: Served, discrepancy_id: int) -> list[tuple[str, str, str]]:
    return [
        (e.actor, e.action, e.details.get("note"))
        for e in served.ledger.audit_for(f"discrepancy:{discrepancy_id}")
    ]


def test_acknowledge_and_resolve_through_api_cli_and_page_are_audited(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = served.api("GET", "/api/discrepancies").json()
    first, second, third = (d["id"] for d in listed)
    assert all(d["acknowledged_at"] is None for d in listed)

    acked = served.api("POST", f"/api/discrepancies/{first}/acknowledge",
                       json={"note": "credit memo on its way"})  # fmt: skip
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "ops-api"
    assert acked.json()["acknowledged_note"] == "credit memo on its way"
    assert _discrepancy_audit(served, first) == [
        ("ops-api", "discrepancy.acknowledge", "credit memo on its way")
    ]
    only_acked = served.api("GET", "/api/discrepancies?status=acknowledged").json()
    assert [d["id"] for d in only_acked] == [first]
    assert served.api("POST", "/api/discrepancies/999999/resolve",
                      json={"note": "x"}).status_code == 404  # fmt: skip
    assert served.api("POST", f"/api/discrepancies/{first}/resolve",
                      json={"note": ""}).status_code == 422  # fmt: skip

    done = served.api("POST", f"/api/discrepancies/{first}/resolve", json={"note": "accepted"})
    assert done.status_code == 200 and done.json()["resolved_at"] is not None
    again = served.api("POST", f"/api/discrepancies/{first}/resolve", json={"note": "again"})
    assert again.status_code == 409
    assert [a for _, a, _ in _discrepancy_audit(served, first)] == [
        "discrepancy.acknowledge", "discrepancy.resolve",
    ]  # fmt: skip

    cli = Cli(served.ledger_url, monkeypatch)
    shown = cli.json("discrepancies", "list", "--json")
    assert [d["id"] for d in shown] == [second, third]
    row = cli.json("discrepancies", "ack", str(second), "--note", "looking", "--actor", "cli:ana",
                   "--json")  # fmt: skip
    assert row["acknowledged_by"] == "cli:ana"
    assert cli("discrepancies", "resolve", str(first), "--note", "x").exit_code == 2  # closed
    assert cli("discrepancies", "ack", str(third), "--note", " ").exit_code == 2
    assert _discrepancy_audit(served, second) == [("cli:ana", "discrepancy.acknowledge", "looking")]

    browser = sign_in(served)
    page = f"{served.url}/ops/discrepancies"
    token = csrf_of(browser, page)
    refused = browser.post(f"{page}/{third}/act", data={"action": "resolve", "note": "n"},
                           timeout=10, allow_redirects=False)  # fmt: skip
    assert refused.status_code == 403
    form = {"csrf_token": token, "action": "resolve", "note": "paid"}
    shown_page = browser.post(f"{page}/{third}/act", data=form, timeout=10)
    assert f"Discrepancy {third} is resolved." in shown_page.text
    sid = session_label(hash_session_id(browser.cookies["billsync_ops_session"]))
    assert _discrepancy_audit(served, third) == [(f"ops-web:{sid}", "discrepancy.resolve", "paid")]
    assert "Acknowledged by cli:ana" in shown_page.text  # the acknowledged one stays listed
