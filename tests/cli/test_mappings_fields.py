"""`billsync mappings check --config` verifies the mapped Salesforce fields exist (issue
16), by describing Opportunity, Account, OpportunityLineItem and the objects relationship
paths reach, against `billsync sandbox serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from billsync.sandbox.launcher import SandboxHandle, running_sandbox

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    with running_sandbox(tmp_path_factory.mktemp("mappings-fields")) as handle:
        yield handle


def billsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "billsync.sync.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )  # fmt: skip


def config_with(sandbox: SandboxHandle, tmp_path: Path, mapping: str) -> Path:
    (tmp_path / "custom.yaml").write_text(mapping, encoding="utf-8")
    config = yaml.safe_load(sandbox.config_path.read_text(encoding="utf-8"))
    config["ledger"]["url"] = f"sqlite:///{tmp_path / 'ledger.db'}"
    config["sync"]["mapping_files"] = [str(tmp_path / "custom.yaml")]
    out = tmp_path / "billsync.yaml"
    out.write_text(yaml.safe_dump(config), encoding="utf-8")
    return out


def test_the_default_mapping_fields_exist(sandbox: SandboxHandle, tmp_path: Path) -> None:
    config = config_with(sandbox, tmp_path, "source:\n  target_hint: Billing_Platform__c\n")
    result = billsync("mappings", "check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "source fields OK" in result.stdout


def test_missing_source_and_writeback_fields_are_named(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    mapping = (
        "source:\n"
        "  po_number: PO_Number__c\n"
        "  billing_email: Account.AP_Email__c\n"
        "  contact_email: Bill_To__r.Email\n"
        "writeback:\n"
        "  status: Billing_State__c\n"
    )
    config = config_with(sandbox, tmp_path, mapping)
    result = billsync("mappings", "check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    err = result.stderr
    assert "source.po_number: PO_Number__c: Opportunity has no field PO_Number__c" in err
    assert "source.billing_email: Account.AP_Email__c: Account has no field AP_Email__c" in err
    assert (
        "source.contact_email: Bill_To__r.Email: Opportunity has no relationship Bill_To__r" in err
    )
    assert "writeback.status: Billing_State__c: Opportunity has no field Billing_State__c" in err
    assert "Traceback" not in err
