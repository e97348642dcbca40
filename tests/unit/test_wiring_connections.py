"""Wiring builds each target connection under its own name, and the ledger pins what
each name is: re-pointing a name at another company stops start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from billsync.config.loader import load_settings
from billsync.config.settings import Settings
from billsync.core.problems import ConfigError
from billsync.sync.ledger import Ledger, create_ledger_engine
from billsync.sync.ledger.migrate import upgrade_to_head
from billsync.sync.wiring import targets_for

CONFIG = """
sync:
  targets: [qbo_us, qbo_uk, stripe_eu]
connections:
  qbo_us: {kind: quickbooks, realm_id: "US_REALM", client_id: app, client_secret: s1}
  qbo_uk: {kind: quickbooks, realm_id: "222", client_id: app, client_secret: s2}
  stripe_eu: {kind: stripe, api_key: sk_test_eu0123456789}
"""


def settings(tmp_path: Path, us_realm: str) -> Settings:
    path = tmp_path / "billsync.yaml"
    path.write_text(CONFIG.replace("US_REALM", us_realm))
    return load_settings(path, environ={})


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade_to_head(engine)
    return Ledger(engine)


def test_each_connection_is_built_under_its_own_name(tmp_path: Path, ledger: Ledger) -> None:
    built = targets_for(settings(tmp_path, "111"), ledger, "test-holder")
    assert {name: t.target for name, t in built.targets.items()} == {
        "qbo_us": "qbo_us",
        "qbo_uk": "qbo_uk",
        "stripe_eu": "stripe_eu",
    }
    assert {name: f.provider for name, f in built.feeds.items()} == {
        "qbo_us": "qbo_us",
        "qbo_uk": "qbo_uk",
        "stripe_eu": "stripe_eu",
    }


def test_a_connection_pointed_at_another_company_stops_start_up(
    tmp_path: Path, ledger: Ledger
) -> None:
    targets_for(settings(tmp_path, "111"), ledger, "test-holder")
    with pytest.raises(ConfigError) as exc:
        targets_for(settings(tmp_path, "999"), ledger, "test-holder")
    (problem,) = exc.value.problems
    assert problem.key == "connections.qbo_us"
    assert "a quickbooks connection for account 111" in problem.reason
    assert "for account 999" in problem.reason
