"""The CLI as a user meets it: a subprocess, its exit code, its stdout and stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = [
    "run",
    "serve",
    "demo",
    "sandbox",
    "failures",
    "reconcile",
    "status",
    "report",
    "mappings",
    "auth",
]


def billsync(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "billsync.sync.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_version() -> None:
    result = billsync("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("billsync ")


def test_help_lists_every_command() -> None:
    result = billsync("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f" {command} " in result.stdout, command


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command: str) -> None:
    assert billsync(command, "--help").returncode == 0


def test_bad_config_exits_2_with_three_lines_and_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "salesforce:\n  overlap_minutes: soon\nsync:\n  overlapp: 3\nstripe:\n  enabled: true\n"
    )
    result = billsync("run", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert {line.split(": ")[1] for line in lines} == {
        "salesforce.overlap_minutes",
        "sync.overlapp",
        "stripe.api_key",
    }
    assert all(line.startswith(f"{config}: ") for line in lines)
    assert "Traceback" not in result.stderr + result.stdout


def test_config_from_environment_variable(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("ledger:\n  ulr: x\n")
    result = billsync("config", "check", env={"BILLSYNC_CONFIG": str(config)}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"{config}: ledger.ulr: unknown key (did you mean 'url'?)"


def test_config_check_masks_secrets(tmp_path: Path) -> None:
    env = {"BILLSYNC_STRIPE__ENABLED": "true", "BILLSYNC_STRIPE__API_KEY": "sk_test_VISIBLE0001"}
    result = billsync("config", "check", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sk_test_VISIBLE0001" not in result.stdout + result.stderr
    assert '"api_key": "**********"' in result.stdout


def test_migrate_creates_the_ledger(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    result = billsync("migrate", env={"BILLSYNC_LEDGER__URL": f"sqlite:///{db}"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ledger at revision" in result.stdout
    assert db.exists()
    again = billsync("migrate", env={"BILLSYNC_LEDGER__URL": f"sqlite:///{db}"}, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == result.stdout


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "billsync"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0


def test_mappings_check_default_and_bad_file(tmp_path: Path) -> None:
    ok = billsync("mappings", "check", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "mappings OK" in ok.stdout and "default.yaml" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("invoice:\n  memo: deal.nmae\n")
    result = billsync("mappings", "check", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{bad}:2: invoice.memo: unknown field path 'deal.nmae'")
    assert "Traceback" not in result.stderr


def test_mappings_check_uses_configured_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("terms:\n  default: Net 99\n")
    config = tmp_path / "billsync.yaml"
    config.write_text(f"sync:\n  mapping_files: [{bad}]\n")
    result = billsync("mappings", "check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "terms.default: 'Net 99' is not one of terms.values" in result.stderr
