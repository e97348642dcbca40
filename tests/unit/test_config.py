"""Config loading: sources, precedence, secret files and the one-line-per-problem report."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from billsync.config.loader import load_settings
from billsync.config.settings import sections_of, with_connectors
from billsync.core.plugins import installed_specs
from billsync.core.problems import ConfigError

# billsync's own sections and each installed connector's
SECTIONS = sections_of(with_connectors(installed_specs()[0]))
EXAMPLE = Path(__file__).parents[2] / "config" / "billsync.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "billsync.yaml"
    path.write_text(text)
    return path


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def test_defaults_without_any_source() -> None:
    settings = load_settings(None, environ={})
    assert settings.ledger.url == "sqlite:///./billsync.db"
    assert settings.salesforce.api_version == "66.0"
    assert settings.quickbooks.minorversion == 75


def test_example_file_loads_and_documents_every_key() -> None:
    settings = load_settings(EXAMPLE, environ={})
    assert settings.model_dump() == load_settings(None, environ={}).model_dump()
    documented = yaml.safe_load(EXAMPLE.read_text())
    assert set(documented) == set(SECTIONS)
    for section, model in SECTIONS.items():
        assert set(documented[section]) == set(model.model_fields), section
    text = EXAMPLE.read_text()
    for section, model in SECTIONS.items():
        for key in model.model_fields:
            line = next(
                i for i, t in enumerate(text.splitlines()) if t.strip().startswith(f"{key}:")
            )
            assert text.splitlines()[line - 1].strip().startswith("#"), (
                f"{section}.{key} has no comment"
            )


def test_wrong_type_unknown_key_and_missing_secret_give_three_precise_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "salesforce:\n  overlap_minutes: soon\nsync:\n  overlapp: 3\nstripe:\n  enabled: true\n",
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    lines = problems(exc)
    assert len(lines) == 3
    assert f"{path}: salesforce.overlap_minutes: Input should be a valid integer" in lines[0]
    assert any(line == f"{path}: sync.overlapp: unknown key" for line in lines)
    assert any(
        line.startswith(f"{path}: stripe.api_key: required secret is missing") for line in lines
    )


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    path = write(tmp_path, "ledger:\n  ulr: sqlite:///x.db\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert problems(exc) == [f"{path}: ledger.ulr: unknown key (did you mean 'url'?)"]


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, "stirpe:\n  enabled: true\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert problems(exc) == [f"{path}: stirpe: unknown key (did you mean 'stripe'?)"]


def test_environment_overrides_file_and_is_named_as_the_source(tmp_path: Path) -> None:
    path = write(tmp_path, "ledger:\n  url: sqlite:///from-file.db\n")
    env = {"BILLSYNC_LEDGER__URL": "sqlite:///from-env.db"}
    assert load_settings(path, environ=env).ledger.url == "sqlite:///from-env.db"
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={"BILLSYNC_RETRY__MAX_ATTEMPTS": "many"})
    assert problems(exc)[0].startswith("BILLSYNC_RETRY__MAX_ATTEMPTS: retry.max_attempts: ")


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "retry:\n  max_attempts: 3\n")
    assert load_settings(None, environ={"BILLSYNC_CONFIG": str(path)}).retry.max_attempts == 3


def test_secret_from_env_file_variable(tmp_path: Path) -> None:
    secret = tmp_path / "stripe_key"
    secret.write_text("sk_test_fromfile123\n")
    env = {"BILLSYNC_STRIPE__ENABLED": "true", "BILLSYNC_STRIPE__API_KEY_FILE": str(secret)}
    settings = load_settings(None, environ=env)
    assert settings.stripe.api_key is not None
    assert settings.stripe.api_key.get_secret_value() == "sk_test_fromfile123"


def test_secret_from_yaml_file_key(tmp_path: Path) -> None:
    secret = tmp_path / "ops_token"
    secret.write_text("ops-token-value")
    path = write(tmp_path, f"ops:\n  token_file: {secret}\n")
    settings = load_settings(path, environ={})
    assert settings.ops.token is not None
    assert settings.ops.token.get_secret_value() == "ops-token-value"


def test_unreadable_secret_file_is_reported_without_value(tmp_path: Path) -> None:
    env = {"BILLSYNC_OPS__TOKEN_FILE": str(tmp_path / "missing")}
    with pytest.raises(ConfigError) as exc:
        load_settings(None, environ=env)
    (line,) = problems(exc)
    assert line.startswith("BILLSYNC_OPS__TOKEN_FILE: ops.token: cannot read secret file ")


def test_list_of_secrets_from_environment_json() -> None:
    env = {"BILLSYNC_STRIPE__WEBHOOK_SECRETS": '["whsec_old1234", "whsec_new5678"]'}
    settings = load_settings(None, environ=env)
    assert settings.secret_values() == ["whsec_old1234", "whsec_new5678"]


def test_list_of_secrets_from_a_file_is_one_per_line(tmp_path: Path) -> None:
    secrets = tmp_path / "stripe_webhook_secrets"
    secrets.write_text("whsec_old1234\n\n  whsec_new5678  \n")
    env = {"BILLSYNC_STRIPE__WEBHOOK_SECRETS_FILE": str(secrets)}
    assert load_settings(None, environ=env).secret_values() == ["whsec_old1234", "whsec_new5678"]
    path = write(tmp_path, f"stripe:\n  webhook_secrets_file: {secrets}\n")
    assert load_settings(path, environ={}).secret_values() == ["whsec_old1234", "whsec_new5678"]


def test_messages_never_contain_secret_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "stripe:\n  enabled: true\n  api_key: [sk_live_SUPERSECRET99]\n"
        "quickbooks:\n  enabled: true\n  client_secret: {x: qbSECRETvalue}\n",
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    text = str(exc.value)
    assert "SUPERSECRET" not in text and "qbSECRET" not in text
    assert "stripe.api_key" in text and "quickbooks.client_secret" in text


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "ledger:\n  url: [unclosed\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    (line,) = problems(exc)
    assert line.startswith(f"{path}: line ") and "invalid YAML" in line


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path / "nope.yaml", environ={})
    assert problems(exc) == [
        f"{tmp_path / 'nope.yaml'}: -: cannot read the file: No such file or directory"
    ]


def test_repr_masks_secrets() -> None:
    settings = load_settings(None, environ={"BILLSYNC_OPS__TOKEN": "opsTokenXYZ123"})
    assert "opsTokenXYZ123" not in repr(settings)
    assert "opsTokenXYZ123" not in settings.model_dump_json()
