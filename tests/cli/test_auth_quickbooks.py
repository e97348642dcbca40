"""`billsync auth quickbooks` as a user meets it: a subprocess against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import yaml

from billsync.connectors.quickbooks import QuickBooksConnector, TokenSet
from billsync.connectors.quickbooks.auth import credential_name
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from billsync.sync.ledger.credential_store import LedgerCredentialStore
from tests.sandbox.harness import LoopThread, start_in_thread

SYSTEM = "billsync.sandbox.quickbooks.system:QuickBooksSandbox"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopThread]:
    with start_in_thread(
        tmp_path_factory.mktemp("qbo-cli"), systems={"quickbooks": SYSTEM}
    ) as runner:
        yield runner


class Cli:
    def __init__(self, sandbox: LoopThread, tmp: Path) -> None:
        self.sandbox = sandbox
        self.section = dict(sandbox.sandbox.systems["quickbooks"].config_section())
        self.realm = str(self.section["realm_id"])
        self.db = tmp / "ledger.db"
        self.config = tmp / "billsync.yaml"
        self.write_config()

    def write_config(self, **overrides: Any) -> None:
        section = {**self.section, **overrides}
        text = yaml.safe_dump({"ledger": {"url": f"sqlite:///{self.db}"}, "quickbooks": section})
        self.config.write_text(text)

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLSYNC_", "OAUTHLIB_"))}
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "billsync.sync.cli",
                "--log-format",
                "json",
                "auth",
                "quickbooks",
                "--config",
                str(self.config),
                *args,
            ],
            capture_output=True,
            text=True,
            env=env,
            input=stdin,
            timeout=60,
            check=False,
        )

    def mint_code(self) -> str:
        admin = self.sandbox.info["admin_url"]
        body = {"redirect_uri": self.section["redirect_uri"]}
        response = requests.post(f"{admin}/_sandbox/quickbooks/oauth/code", json=body, timeout=10)
        return str(response.json()["code"])

    def ledger(self) -> Ledger:
        engine = create_ledger_engine(f"sqlite:///{self.db}")
        upgrade_to_head(engine)
        return Ledger(engine)

    def stored(self) -> TokenSet | None:
        loaded = self.ledger().load_credentials(credential_name(self.realm))
        return None if loaded is None else TokenSet.from_data(loaded.data)


@pytest.fixture
def cli(sandbox: LoopThread, tmp_path: Path) -> Cli:
    return Cli(sandbox, tmp_path)


def secret_free(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout + result.stderr


def test_connect_with_code_and_realm_then_status(cli: Cli) -> None:
    result = cli.run("--code", cli.mint_code(), "--realm", cli.realm)
    assert result.returncode == 0, result.stderr
    assert f"Connected QuickBooks company {cli.realm}" in result.stdout
    tokens = cli.stored()
    assert tokens is not None and tokens.access_token and tokens.connected_at
    secret_free(
        result, tokens.refresh_token, tokens.access_token, str(cli.section["client_secret"])
    )
    status = cli.run("--status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["realm_id"] == cli.realm and report["access_token_valid"] is True
    assert report["refresh_token_age_days"] == 0 and report["warnings"] == []
    assert report["reconnect_by"][:4] == str(datetime.now(UTC).year + 5)
    secret_free(status, tokens.refresh_token, tokens.access_token)
    table = cli.run("--status")
    assert table.returncode == 0 and "refresh token expires at" in table.stdout


def test_the_stored_tokens_are_what_the_connector_uses(cli: Cli) -> None:
    assert cli.run("--code", cli.mint_code(), "--realm", cli.realm).returncode == 0
    settings = QuickBooksSettings(**{**cli.section, "refresh_token": None})
    connector = QuickBooksConnector(settings, LedgerCredentialStore(cli.ledger(), "run"))
    assert connector.catalog().term_exists("Net 30")


def test_connect_with_a_pasted_redirect_url_checks_the_state(cli: Cli) -> None:
    url = f"{cli.section['redirect_uri']}?code={cli.mint_code()}&state=s1&realmId={cli.realm}"
    wrong = cli.run("--redirect-url", url, "--state", "s2")
    assert wrong.returncode == 2 and "state does not match" in wrong.stderr
    assert cli.stored() is None
    ok = cli.run("--redirect-url", url, "--state", "s1")
    assert ok.returncode == 0, ok.stderr


def test_interactive_flow_through_the_consent_url(cli: Cli) -> None:
    """Print the consent URL, 'approve' it (the sandbox redirects with code and state),
    paste the redirect URL on stdin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLSYNC_", "OAUTHLIB_"))}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "billsync.sync.cli",
            "auth",
            "quickbooks",
            "--config",
            str(cli.config),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None and process.stdin is not None
    consent = ""
    while not consent:
        text = process.stdout.readline()
        assert text, process.stderr.read() if process.stderr else ""
        if "/connect/oauth2?" in text:
            consent = text.strip()
    query = parse_qs(urlparse(consent).query)
    assert query["redirect_uri"] == [cli.section["redirect_uri"]]
    assert query["scope"] == ["com.intuit.quickbooks.accounting"] and len(query["state"][0]) >= 20
    approved = requests.get(consent, allow_redirects=False, timeout=10)
    out, err = process.communicate(approved.headers["location"] + "\n", timeout=60)
    assert process.returncode == 0, err
    assert "Connected QuickBooks company" in out
    assert cli.stored() is not None


def test_denied_consent_and_bad_codes_exit_2(cli: Cli) -> None:
    denied = cli.run("--redirect-url", f"{cli.section['redirect_uri']}?error=access_denied&state=x")
    assert denied.returncode == 2 and "access_denied" in denied.stderr
    bad = cli.run("--code", "AB-not-a-code", "--realm", cli.realm)
    assert bad.returncode == 2 and "invalid_grant" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert cli.stored() is None


def test_status_when_not_connected_or_not_configured(cli: Cli) -> None:
    missing = cli.run("--status")
    assert missing.returncode == 2 and "not connected" in missing.stderr
    cli.write_config(realm_id=None)
    unknown = cli.run("--status")
    assert unknown.returncode == 2 and "realm_id" in unknown.stderr
    cli.write_config(redirect_uri=None)
    no_redirect = cli.run("--code", "x", "--realm", cli.realm)
    assert no_redirect.returncode == 2 and "redirect_uri" in no_redirect.stderr


@pytest.mark.parametrize(
    ("field", "ago", "expect"),
    [
        ("connected_at", timedelta(days=5 * 365 - 10), "5-year limit"),
        ("refresh_expires_at", timedelta(days=-20), "refresh token expires"),
        ("refresh_expires_at", timedelta(days=1), "has expired"),
    ],
)
def test_status_warns_thirty_days_ahead(cli: Cli, field: str, ago: timedelta, expect: str) -> None:
    now = datetime.now(UTC)
    tokens = TokenSet(
        refresh_token="AB11stored",
        access_token="eyJstored",
        access_expires_at=now - timedelta(minutes=5),
        refresh_issued_at=now - timedelta(days=3),
        refresh_expires_at=now + timedelta(days=90),
        connected_at=now - timedelta(days=400),
    ).to_data()
    tokens[field] = (now - ago).isoformat()
    cli.ledger().save_credentials(credential_name(cli.realm), tokens, None)
    result = cli.run("--status")
    assert result.returncode == 1
    assert expect in result.stderr
    assert "access token valid" in result.stdout and "False" in result.stdout
    secret_free(result, "AB11stored", "eyJstored")


def test_status_reports_a_refusal_seen_by_a_run_until_reconnected(cli: Cli) -> None:
    import json as _json

    from billsync.sync.engine.cycle import refused_cursor

    now = datetime.now(UTC)
    tokens = TokenSet(
        refresh_token="AB11stored",
        access_token="eyJstored",
        access_expires_at=now + timedelta(minutes=50),
        refresh_issued_at=now - timedelta(days=3),
        refresh_expires_at=now + timedelta(days=90),
        connected_at=now - timedelta(days=40),
    )
    ledger = cli.ledger()
    ledger.save_credentials(credential_name(cli.realm), tokens.to_data(), None)
    message = "QuickBooks refused the stored refresh token (invalid_grant: revoked)"
    refusal = {"at": (now - timedelta(days=1)).isoformat(), "run_id": "r1", "message": message}
    ledger.set_cursor(refused_cursor("quickbooks"), _json.dumps(refusal))
    result = cli.run("--status")
    assert result.returncode == 2
    assert "invalid_grant" in result.stderr and "reconnect" in result.stderr
    secret_free(result, "AB11stored", "eyJstored")
    # Connected again after the refusal: history, not a warning.
    saved = ledger.load_credentials(credential_name(cli.realm))
    assert saved is not None
    renewed = TokenSet.from_data(saved.data).to_data()
    renewed["refresh_issued_at"] = now.isoformat()
    ledger.save_credentials(credential_name(cli.realm), renewed, saved.version)
    assert cli.run("--status").returncode == 0
