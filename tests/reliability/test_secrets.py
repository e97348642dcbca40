"""Secrets never leave: distinctive secret values through the whole flow, then every
place a secret could end up is searched for them.

The flow: `billsync run` (with bad deals, so failures are recorded), runs with a wrong
Stripe key, a wrong Intuit client secret and a wrong Salesforce client secret (so the
vendors' refusals become failure records and messages), `billsync failures list/show`,
`billsync status`, `billsync config check`, `billsync reconcile`, `billsync serve` with
webhooks genuine and refused, its health, metrics, OpenAPI document, ops pages and ops
API, and `billsync demo`. Searched: every process's output and log, the serve log,
every HTTP response (headers and body), every ledger table but `credentials` (whose
job is to hold the rotating QuickBooks tokens and the Salesforce session), and the
demo's log and ledger. A secret counts as leaked when its whole value or any
12-character slice of it appears.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
import yaml

from billsync.sandbox.launcher import SandboxHandle, running_sandbox
from tests.reliability import chaos
from tests.reliability.hooks import intuit_legacy
from tests.reliability.summary import Tally
from tests.reliability.test_vendor_faults import _valid_deals
from tests.reliability.world import (
    billsync,
    billsync_env,
    config_secrets,
    run,
    sqlite_url,
    start_serve,
    write_seed,
)
from tests.server.test_webhook_receiver import intuit_headers, stripe_headers

SUITE = "secrets"
OPS_TOKEN = "ops-token-RELIABILITY-7f3a9c2e1d5b4a68"
WRONG = {
    "BILLSYNC_STRIPE__API_KEY": "sk_test_WRONGreliabilityKEY0123456789abcd",
    "BILLSYNC_QUICKBOOKS__CLIENT_SECRET": "wrong-intuit-client-secret-RELIABILITY-91c4",
    "BILLSYNC_SALESFORCE__CLIENT_SECRET": "wrong-salesforce-secret-RELIABILITY-5e2b77",
}
SLICE = 12


@dataclass
class Evidence:
    """Every text a secret must not be in, by where it came from."""

    texts: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        self.texts[where] = self.texts.get(where, "") + "\n" + text

    def leaks(self) -> list[str]:
        found = []
        for name, secret in self.secrets.items():
            needles = {secret} | {
                secret[i : i + SLICE] for i in range(0, max(1, len(secret) - SLICE + 1), 4)
            }
            needles = {n for n in needles if len(n) >= SLICE or n == secret}
            for where, text in self.texts.items():
                hit = next((n for n in needles if n in text), None)
                if hit is not None:
                    at = text.index(hit)
                    found.append(f"{name} in {where}: …{text[max(0, at - 80) : at + 40]!r}")
        return found


def _ledger_texts(url: str, prefix: str) -> Iterator[tuple[str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                if table == "credentials":
                    continue  # holds the QuickBooks tokens and the Salesforce session, by design
                rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()
                yield f"{prefix} table {table}", "\n".join(repr(tuple(r)) for r in rows)
    finally:
        engine.dispose()


def _rotated_tokens(url: str) -> dict[str, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT name, data FROM credentials")).all()
    finally:
        engine.dispose()
    found = {}
    for name, data in rows:
        values = json.loads(data) if isinstance(data, str) else data
        for key in ("access_token", "refresh_token"):
            if values.get(key):
                found[f"{name} {key}"] = str(values[key])
    return found


def _private_key_slice(handle: SandboxHandle) -> dict[str, str]:
    text = Path(str(handle.info.get("salesforce_private_key_file", ""))).read_text()
    body = "".join(line for line in text.splitlines() if "-----" not in line)
    return {"salesforce private key": body[40:120]} if len(body) > 120 else {}


def _http(evidence: Evidence, where: str, response: requests.Response) -> requests.Response:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    evidence.add(f"HTTP {where}", f"{response.status_code}\n{headers}\n{response.text}")
    return response


def _serve_traffic(evidence: Evidence, handle: SandboxHandle, base: str) -> None:
    info = handle.info
    realm = str(info["quickbooks_realm_id"])
    stripe_secret = str(info["stripe_webhook_secret"])
    verifier = str(info["quickbooks_verifier_token"])
    event = (
        b'{"id": "evt_secrets_1", "object": "event", "api_version": "2020-01-01", '
        b'"type": "invoice.paid", "data": {"object": {}}}'
    )
    note = intuit_legacy(realm, "Payment", "424242")
    calls = [
        ("stripe genuine", "stripe", event, stripe_headers(event, stripe_secret)),
        ("stripe forged", "stripe", event, stripe_headers(event, "whsec_forged")),
        ("stripe unsigned", "stripe", event, {"Content-Type": "application/json"}),
        ("intuit genuine", "quickbooks", note, intuit_headers(note, verifier)),
        ("intuit forged", "quickbooks", note, intuit_headers(note, "forged")),
    ]
    for what, provider, body, headers in calls:
        answer = requests.post(
            f"{base}/webhooks/{provider}", data=body, headers=headers, timeout=30
        )
        _http(evidence, what, answer)
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/ops", "/ops/login"):
        _http(evidence, path, requests.get(f"{base}{path}", timeout=30))
    bearer = {"Authorization": f"Bearer {OPS_TOKEN}"}
    wrong = {"Authorization": "Bearer not-the-token"}
    _http(evidence, "api refused", requests.get(f"{base}/api/failures", headers=wrong, timeout=30))
    failures = _http(
        evidence, "api failures", requests.get(f"{base}/api/failures", headers=bearer, timeout=30)
    )
    ids = [f["id"] for f in failures.json()] if failures.status_code == 200 else []
    paths = [f"/api/failures/{i}" for i in ids[:10]]
    paths += ["/api/status", "/api/discrepancies", "/api/reports/aging", "/api/reports/kpis"]
    for path in paths:
        _http(evidence, path, requests.get(f"{base}{path}", headers=bearer, timeout=30))
    _ops_pages(evidence, base, ids)


def _ops_pages(evidence: Evidence, base: str, ids: list[int]) -> None:
    """Log in through the form, as a person would, and read every page."""
    session = requests.Session()
    form = _http(evidence, "ops login form", session.get(f"{base}/ops/login", timeout=30))
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if found is None:
        evidence.add("ops login form", "(no form: ops pages not served)")
        return
    _http(
        evidence,
        "ops login refused",
        session.post(
            f"{base}/ops/login",
            data={"token": "wrong", "csrf_token": found.group(1)},
            timeout=30,
            allow_redirects=False,
        ),
    )
    form = session.get(f"{base}/ops/login", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None, form.text[:500]
    login = session.post(
        f"{base}/ops/login",
        data={"token": OPS_TOKEN, "csrf_token": token.group(1)},
        timeout=30,
        allow_redirects=False,
    )
    _http(evidence, "ops login", login)
    evidence.add("ops session cookies", repr(session.cookies.get_dict()))
    pages = ["/ops/failures", "/ops/discrepancies", "/ops/runs", "/ops/reports/aging"]
    pages += [f"/ops/failures/{i}" for i in ids[:10]]
    for page in pages:
        _http(evidence, f"page {page}", session.get(f"{base}{page}", timeout=30))


def _commands(evidence: Evidence, env: dict[str, str], cwd: Path, config: Path) -> None:
    """The ops commands, two at a time (each is mostly interpreter start-up)."""
    c = ["--config", str(config)]
    listed = billsync(env, cwd, "failures", "list", "--status", "all", "--json", *c)
    evidence.add("failures list --json", listed.stdout + listed.stderr)
    limit = None if chaos.size().full else 3
    commands: list[tuple[str, ...]] = [
        ("failures", "list"),
        ("status",),
        ("status", "--json"),
        ("config", "check"),
        ("reconcile",),
        ("report", "aging"),
        ("auth", "quickbooks", "--status"),
    ]
    for item_id in re.findall(r'"id":\s*(\d+)', listed.stdout)[:limit]:
        commands += [("failures", "show", item_id), ("failures", "show", item_id, "--json")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda args: billsync(env, cwd, *args, *c), commands))
    for args, result in zip(commands, done, strict=True):
        evidence.add(" ".join(args), result.stdout + result.stderr)


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Evidence:
    workdir = tmp_path_factory.mktemp("secrets")
    seed = _valid_deals(16, 4242, 0)
    seed["salesforce"]["Opportunity"][0]["Billing_Platform__c"] = "Xero"  # a failure
    ledger_url = sqlite_url(workdir / "billsync.db")
    env = billsync_env(ledger_url, BILLSYNC_OPS__TOKEN=OPS_TOKEN)
    found = Evidence()
    with running_sandbox(workdir / "sb", seed_file=write_seed(workdir / "s.json", seed)) as h:
        config = h.config_path
        found.secrets.update(config_secrets(h))
        found.secrets.update(_private_key_slice(h))
        found.secrets.update({"ops token": OPS_TOKEN})
        found.secrets.update({f"wrong {k}": v for k, v in WRONG.items()})
        first = run(config, env, workdir)
        found.add("run 1", first.stdout + first.stderr)
        h.admin("POST", "quickbooks/oauth/expire_access_tokens", {})
        for name, value in WRONG.items():
            wrong = run(config, {**env, name: value}, workdir)
            found.add(f"run with wrong {name}", wrong.stdout + wrong.stderr)
        again = run(config, env, workdir)
        found.add("run after", again.stdout + again.stderr)
        _commands(found, env, workdir, config)
        server = start_serve(config, env, workdir)
        try:
            _serve_traffic(found, h, server.base_url)
        finally:
            server.stop()
        found.add("serve log", server.log())
        found.secrets.update(_rotated_tokens(ledger_url))
        for where, text in _ledger_texts(ledger_url, "ledger"):
            found.add(where, text)
    _demo(found, workdir)
    return found


def _demo(evidence: Evidence, workdir: Path) -> None:
    env = billsync_env("sqlite:///unused.db")
    env.pop("BILLSYNC_LEDGER__URL")
    env["TMPDIR"] = str(workdir)
    done = billsync(env, workdir, "demo", timeout=300)
    evidence.add("demo output", done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-2000:]
    demo_dir = Path(re.search(r"working in (\S+)", done.stdout).group(1))  # type: ignore[union-attr]
    evidence.add("demo log", (demo_dir / "billsync.log").read_text())
    config = yaml.safe_load((demo_dir / "sandbox" / "billsync.yaml").read_text())
    for section, values in config.items():
        for key, value in (values or {}).items():
            secret_like = any(w in key for w in ("secret", "key", "token"))
            if secret_like and isinstance(value, str) and not key.endswith(("_file", "_url")):
                evidence.secrets[f"demo {section}.{key}"] = value
    for where, text in _ledger_texts(f"sqlite:///{demo_dir / 'sandbox' / 'billsync.db'}", "demo"):
        evidence.add(where, text)


def test_the_flow_really_ran(evidence: Evidence, tally: Tally) -> None:
    """Guards the search below against searching nothing."""
    texts = evidence.texts
    needed = {
        "run 1": '"invoices_created"',
        "failures list --json": "Xero",
        "HTTP stripe forged": "bad_signature",
        "HTTP api failures": "Xero",
        "HTTP page /ops/failures": "Xero",
        "demo output": "invoices created",
        "ledger table work_items": "Xero",
    }
    problems = [f"{where}: {text!r} missing" for where, text in needed.items()
                if text not in texts.get(where, "")]  # fmt: skip
    wrong_key_run = texts.get("run with wrong BILLSYNC_STRIPE__API_KEY", "")
    if '"stripe"' not in wrong_key_run or "stopped" not in wrong_key_run:
        problems.append("the wrong Stripe key was not refused")
    if len(evidence.secrets) < 10:
        problems.append(f"only {len(evidence.secrets)} secrets known: {sorted(evidence.secrets)}")
    tally.tried(SUITE, len(needed))
    assert tally.violated(SUITE, problems) == []


def test_no_secret_appears_anywhere(evidence: Evidence, tally: Tally) -> None:
    tally.tried(SUITE, len(evidence.secrets) * len(evidence.texts))
    print(f"{len(evidence.secrets)} secrets searched for in {len(evidence.texts)} places "
          f"({sum(len(t) for t in evidence.texts.values())} characters)")  # fmt: skip
    found = tally.violated(SUITE, evidence.leaks())
    assert found == [], "\n".join(found[:20])
