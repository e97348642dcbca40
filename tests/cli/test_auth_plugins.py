"""`billsync auth <connector>`: each installed connector's own command, mounted from its
spec (`ConnectorSpec.cli`) and given its settings section and the ledger through
`CommandOpener`, never by importing billsync's CLI or ledger."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pytest
import structlog
import typer
from typer.testing import CliRunner, Result

from billsync.core.plugins import CommandOpener, installed_specs
from billsync.sync.cli import auth_cmd
from billsync.sync.cli.app import app
from billsync.sync.engine.cycle import refused_cursor
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head


def probe(open_command: CommandOpener) -> typer.Typer:
    """A connector command reporting what billsync lent it."""
    commands = typer.Typer(add_completion=False)

    @commands.command()
    def check(
        ctx: typer.Context,
        config: Annotated[Path | None, typer.Option("--config")] = None,
        create: Annotated[bool, typer.Option("--create")] = False,
    ) -> None:
        """Probe what billsync lends a connector."""
        opened = open_command(ctx, config)
        store = opened.credentials(create=create)
        stored = store.load("stripe:probe") if store is not None else None
        typer.echo(json.dumps({
            "section": type(opened.section).__name__,
            "enabled": opened.section.enabled,
            "store": store is not None,
            "stored": dict(stored[0]) if stored else None,
            "refusal": opened.last_refusal(),
        }))  # fmt: skip

    return commands


@pytest.fixture
def stripe_with_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    specs = installed_specs()[0]
    with_commands = {name: spec for name, spec in specs.items() if spec.cli is not None} | {
        "stripe": dataclasses.replace(specs["stripe"], cli=probe)
    }
    monkeypatch.setattr(auth_cmd, "_with_commands", lambda: with_commands)


def invoke(*args: str) -> Result:
    try:
        return CliRunner().invoke(app, list(args), obj={}, catch_exceptions=False)
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers[:] = []


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("BILLSYNC_"):
            monkeypatch.delenv(name)
    path = tmp_path / "billsync.yaml"
    path.write_text(
        f"ledger: {{url: 'sqlite:///{tmp_path / 'ledger.db'}'}}\n"
        "logging: {format: json}\n"
        "stripe: {enabled: true, api_key: sk_test_probe}\n"
    )
    return path


def test_every_connector_that_declares_a_command_is_listed(stripe_with_a_command: None) -> None:
    listing = invoke("auth", "--help")
    assert listing.exit_code == 0
    assert "quickbooks" in listing.stdout and "stripe" in listing.stdout
    assert "Probe what billsync lends a connector" in listing.stdout
    unknown = invoke("auth", "salesforce")  # declares none
    assert unknown.exit_code == 2


def test_the_command_gets_its_section_and_the_ledger(
    stripe_with_a_command: None, config: Path, tmp_path: Path
) -> None:
    before = invoke("auth", "stripe", "--config", str(config))
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout) == {
        "section": "StripeSettings", "enabled": True, "store": False, "stored": None,
        "refusal": None}  # fmt: skip

    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade_to_head(engine)
    ledger = Ledger(engine)
    assert ledger.save_credentials("stripe:probe", {"kind": "probe"}, None)
    refusal = {"at": datetime(2026, 3, 1, tzinfo=UTC).isoformat(), "run_id": "r1",
               "message": "Stripe refused the API key"}  # fmt: skip
    ledger.set_cursor(refused_cursor("stripe"), json.dumps(refusal))
    engine.dispose()

    after = invoke("auth", "stripe", "--config", str(config))
    assert after.exit_code == 0, after.output
    report: dict[str, Any] = json.loads(after.stdout)
    assert report["store"] is True and report["stored"] == {"kind": "probe"}
    assert report["refusal"] == refusal


def test_creating_the_store_migrates_a_new_ledger(
    stripe_with_a_command: None, config: Path, tmp_path: Path
) -> None:
    result = invoke("auth", "stripe", "--config", str(config), "--create")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["store"] is True


def test_a_configuration_problem_stops_before_the_command(
    stripe_with_a_command: None, config: Path
) -> None:
    from billsync.core.problems import ConfigError

    config.write_text(config.read_text() + "stripe_typo: {}\n")
    with pytest.raises(ConfigError):  # `main` prints it and exits 2
        invoke("auth", "stripe", "--config", str(config))


def test_the_command_opens_the_chosen_connection_of_its_kind(
    stripe_with_a_command: None, config: Path, tmp_path: Path
) -> None:
    config.write_text(
        config.read_text()
        + "connections:\n"
        + "  stripe_eu: {kind: stripe, enabled: false, api_key: sk_test_probe_eu}\n"
    )
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade_to_head(engine)
    refusal = {"at": datetime(2026, 3, 1, tzinfo=UTC).isoformat(), "run_id": "r2",
               "message": "Stripe refused the EU key"}  # fmt: skip
    Ledger(engine).set_cursor(refused_cursor("stripe_eu"), json.dumps(refusal))
    engine.dispose()

    chosen = invoke("auth", "--connection", "stripe_eu", "stripe", "--config", str(config))
    assert chosen.exit_code == 0, chosen.output
    report = json.loads(chosen.stdout)
    assert (report["section"], report["enabled"]) == ("StripeConnection", False)
    assert report["refusal"] == refusal  # the connection's own, not the plain section's

    from billsync.core.problems import ConfigError

    with pytest.raises(ConfigError, match="no stripe connection 'stripe_us' is configured"):
        invoke("auth", "--connection", "stripe_us", "stripe", "--config", str(config))
