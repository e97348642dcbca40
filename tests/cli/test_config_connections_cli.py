"""`billsync config check` shows each connection under its name, kind first, secrets
masked, and stops with one line naming the key for a bad one."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import billsync

CONFIG = """
connections:
  qbo_uk: {kind: quickbooks, realm_id: "222", client_id: app, client_secret: uk-VISIBLE-1,
           home_currency: GBP}
  stripe_eu: {kind: stripe, api_key: sk_test_VISIBLE0002}
"""


def test_config_check_lists_connections_with_secrets_masked(tmp_path: Path) -> None:
    config = tmp_path / "billsync.yaml"
    config.write_text(CONFIG)
    result = billsync("config", "check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    uk = [line.strip() for line in lines if line.strip().startswith("connections.qbo_uk.")]
    assert uk[:2] == ['connections.qbo_uk.kind = "quickbooks"', "connections.qbo_uk.enabled = true"]
    assert 'connections.qbo_uk.client_secret = "**********"' in uk
    assert 'connections.qbo_uk.home_currency = "GBP"' in uk
    assert "VISIBLE" not in result.stdout + result.stderr


def test_a_connection_of_an_unknown_kind_stops_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "billsync.yaml"
    config.write_text("connections:\n  books_eu: {kind: xero}\n")
    result = billsync("config", "check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        f"{config}: connections.books_eu.kind: kind must name an installed connector ("
    )
