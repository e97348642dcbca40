"""`connections:`: several accounts of one connector kind in one configuration.

Each entry is validated by its kind's own section model; names are checked; secrets
come from the environment and secret files like any section's, and are scrubbed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from billsync.config.loader import load_settings
from billsync.core.problems import ConfigError

TWO_COMPANIES = """
sync:
  targets: [qbo_us, qbo_uk, stripe_eu]
connections:
  qbo_us: {kind: quickbooks, realm_id: "111", client_id: app, client_secret: us-secret-1}
  qbo_uk: {kind: quickbooks, realm_id: "222", client_id: app, client_secret_file: SECRET,
           home_currency: GBP}
  stripe_eu: {kind: stripe, api_key: sk_test_eu0123456789}
"""


def write(tmp_path: Path, text: str) -> Path:
    secret = tmp_path / "uk-secret"
    secret.write_text("uk-secret-2\n")
    path = tmp_path / "billsync.yaml"
    path.write_text(text.replace("SECRET", str(secret)))
    return path


def test_each_connection_has_its_kind_its_section_and_a_label(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, TWO_COMPANIES), environ={})
    kinds = settings.connection_kinds()
    assert kinds == {
        "quickbooks": "quickbooks",
        "salesforce": "salesforce",
        "stripe": "stripe",
        "qbo_us": "quickbooks",
        "qbo_uk": "quickbooks",
        "stripe_eu": "stripe",
    }
    uk = settings.connection("qbo_uk")
    assert (uk.label, uk.section.enabled) == ("QuickBooks (qbo_uk)", True)
    assert uk.section.home_currency == "GBP"  # type: ignore[attr-defined]
    assert settings.connection("quickbooks").label == "QuickBooks"
    assert not settings.connection("quickbooks").section.enabled


def test_secrets_of_connections_come_from_files_and_environment_and_are_scrubbed(
    tmp_path: Path,
) -> None:
    env = {"BILLSYNC_CONNECTIONS__STRIPE_EU__API_KEY": "sk_test_fromenv0123456"}
    settings = load_settings(write(tmp_path, TWO_COMPANIES), environ=env)
    assert settings.connection("qbo_uk").section.client_secret.get_secret_value() == (  # type: ignore[attr-defined]
        "uk-secret-2"
    )
    secrets = settings.secret_values()
    assert {"us-secret-1", "uk-secret-2", "sk_test_fromenv0123456"} <= set(secrets)
    assert "uk-secret-2" not in repr(settings)


def test_an_env_secret_file_reaches_a_declared_connection(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("verifier-xyz\n")
    env = {"BILLSYNC_CONNECTIONS__QBO_US__VERIFIER_TOKEN_FILE": str(token)}
    settings = load_settings(write(tmp_path, TWO_COMPANIES), environ=env)
    section = settings.connection("qbo_us").section
    assert section.verifier_token.get_secret_value() == "verifier-xyz"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("qbo_us: {kind: quickbooks, realm_id: '1', client_secret: x, colour: red}",
         "connections.qbo_us.colour: unknown key"),
        ("Qbo: {kind: stripe, api_key: sk_test_0123456789ab}",
         "connections.Qbo: Value error, the name 'Qbo' must be"),
        ("stripe: {kind: stripe, api_key: sk_test_0123456789ab}",
         "connections.stripe: Value error, the name 'stripe' is taken"),
        ("ledger: {kind: stripe, api_key: sk_test_0123456789ab}",
         "connections.ledger: Value error, the name 'ledger' is taken"),
        ("x1: {kind: xero}", "connections.x1.kind: kind must name an installed connector"),
        ("x2: {realm_id: '3'}", "connections.x2.kind: kind must name an installed connector"),
        ("qbo_us: {kind: quickbooks, realm_id: '1'}",
         "connections.qbo_us.client_secret: required secret is missing: set "
         "connections.qbo_us.client_secret in the config file, or "
         "BILLSYNC_CONNECTIONS__QBO_US__CLIENT_SECRET, or"),
    ],
)  # fmt: skip
def test_a_bad_connection_is_one_line_naming_file_and_key(
    tmp_path: Path, entry: str, expected: str
) -> None:
    path = write(tmp_path, f"connections:\n  {entry}\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    lines = [str(p) for p in exc.value.problems]
    assert any(line.startswith(f"{path}: {expected}") for line in lines), lines


def test_a_configuration_without_connections_is_unchanged() -> None:
    settings = load_settings(None, environ={})
    assert settings.named_connections() == {}
    assert set(settings.every_connection()) == {"quickbooks", "salesforce", "stripe"}
