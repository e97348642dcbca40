"""The Salesforce session kept in the ledger and reused by the next run.

Against the sandbox (real SDK, HTTPS, sessions that it can expire) with a real SQLite
ledger: each `SalesforceDealSource` built here is what one `billsync run` process
builds, sharing the ledger's credential store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from billsync.connectors.salesforce import SalesforceDealSource
from billsync.connectors.salesforce.auth import AccessToken, OAuthLogin, StoredSession
from billsync.connectors.salesforce.settings import SalesforceSettings
from billsync.core.canonical import Deal
from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.sandbox.generate import GenerateOptions, generate_seed
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from billsync.sync.ledger.credential_store import LedgerCredentialStore
from tests.connectors.salesforce.test_sandbox_contract import Org
from tests.sandbox.harness import start_in_thread

SYSTEM = "billsync.sandbox.salesforce.system:SalesforceSandbox"
TOKEN = "POST oauth2/token"
NAME = "salesforce:session:0123456789abcdef"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with start_in_thread(tmp_path_factory.mktemp("sf"), systems={"salesforce": SYSTEM}) as runner:
        yield runner


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade_to_head(engine)
    return Ledger(engine)


class Runs:
    """Builds one deal source per simulated `billsync run` process, on one ledger."""

    def __init__(self, org: Org, ledger: Ledger) -> None:
        self.org = org
        self.ledger = ledger
        self.count = 0

    def settings(self, **overrides: Any) -> SalesforceSettings:
        return SalesforceSettings(**{**self.org.section, **overrides})

    def source(self, **overrides: Any) -> SalesforceDealSource:
        self.count += 1
        source = SalesforceDealSource(
            self.settings(**overrides), company_currency="USD", sleep=lambda s: None
        )
        source.client.use_credential_store(LedgerCredentialStore(self.ledger, f"run-{self.count}"))
        self.org.sources.append(source)
        return source

    def pull(self, **overrides: Any) -> tuple[SalesforceDealSource, list[str]]:
        source = self.source(**overrides)
        ids = sorted(c.item.id for c in source.pull(None) if isinstance(c.item, Deal))
        return source, ids

    def name(self, **overrides: Any) -> str:
        return OAuthLogin(self.settings(**overrides), requests.Session()).credential_name

    def stored(self, **overrides: Any) -> tuple[dict[str, Any], int] | None:
        loaded = self.ledger.load_credentials(self.name(**overrides))
        return None if loaded is None else (loaded.data, loaded.version)


@pytest.fixture
def runs(sandbox: Any, ledger: Ledger) -> Iterator[Runs]:
    org = Org(sandbox)
    org.admin("POST", "/_sandbox/reset")
    org.admin("POST", "/_sandbox/salesforce/expire_sessions")
    org.seed(generate_seed(GenerateOptions(deals=6, random_seed=11))["salesforce"])
    org.reset_calls()
    yield Runs(org, ledger)
    for source in org.sources:
        source.close()


@pytest.mark.parametrize("auth", ["client_credentials", "jwt"])
def test_the_next_run_reuses_the_stored_session_without_a_token_call(runs: Runs, auth: str) -> None:
    first, deals = runs.pull(auth=auth)
    assert deals and first.client.logins == 1 and not first.client.reused_session
    second, again = runs.pull(auth=auth)
    assert again == deals
    assert second.client.logins == 0 and second.client.reused_session
    assert runs.org.calls()[TOKEN] == 1


def test_an_expired_stored_session_is_renewed_once_and_the_call_succeeds(runs: Runs) -> None:
    _, deals = runs.pull()
    stale, _ = runs.stored() or ({}, 0)
    runs.org.admin("POST", "/_sandbox/salesforce/expire_sessions")
    runs.org.reset_calls()
    renewed, again = runs.pull()
    assert again == deals and renewed.client.logins == 1
    calls = runs.org.calls()
    assert calls[TOKEN] == 1 and calls["GET query"] == 2  # refused once, then repeated
    fresh, version = runs.stored() or ({}, 0)
    assert version == 2 and fresh["access_token"] != stale["access_token"]
    third, _ = runs.pull()
    assert third.client.logins == 0 and runs.org.calls()[TOKEN] == 1  # the renewed one


def test_sessions_older_than_the_reuse_limit_are_not_reused(runs: Runs) -> None:
    runs.pull(session_reuse_s=60)
    data, version = runs.stored(session_reuse_s=60) or ({}, 0)
    issued = datetime.fromisoformat(data["issued_at"])
    runs.ledger.save_credentials(
        runs.name(),
        {**data, "issued_at": (issued - timedelta(seconds=61)).isoformat()},
        version,
    )
    later, _ = runs.pull(session_reuse_s=60)
    assert later.client.logins == 1 and runs.org.calls()[TOKEN] == 2


def test_reuse_off_logs_in_every_run_and_stores_nothing(runs: Runs) -> None:
    runs.pull(session_reuse_s=0)
    second, _ = runs.pull(session_reuse_s=0)
    assert second.client.logins == 1 and runs.org.calls()[TOKEN] == 2
    assert runs.stored(session_reuse_s=0) is None


def test_another_login_or_a_rotated_secret_does_not_reuse_the_session(runs: Runs) -> None:
    runs.pull()
    other, _ = runs.pull(auth="jwt")  # another flow: the stored session is not its
    assert other.client.logins == 1
    rotated = {"client_secret": "a-rotated-consumer-secret-0123456789"}
    wrong = runs.source(**rotated)  # the sandbox refuses it: no stored session hides that
    with pytest.raises(ConnectorError) as refused:
        list(wrong.pull(None))
    assert refused.value.error_class is ErrorClass.AUTH
    names = {runs.name(), runs.name(auth="jwt"), runs.name(**rotated)}
    assert len(names) == 3 and all(n.startswith("salesforce:session:") for n in names)
    assert not any(rotated["client_secret"][:12] in n for n in names)


def test_concurrent_renewals_keep_a_working_session_in_the_ledger(runs: Runs) -> None:
    runs.pull()
    runs.org.admin("POST", "/_sandbox/salesforce/expire_sessions")
    runs.org.reset_calls()
    sources = [runs.source() for _ in range(4)]
    start = threading.Barrier(len(sources))
    results: dict[int, list[str]] = {}

    def work(n: int) -> None:
        start.wait()
        results[n] = sorted(c.item.id for c in sources[n].pull(None) if isinstance(c.item, Deal))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(sources))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 4 and len({tuple(r) for r in results.values()}) == 1
    # Each was refused the stale session and logged in, unless it started late enough
    # to find one already renewed by another.
    logins = sum(source.client.logins for source in sources)
    assert 1 <= logins <= 4 and runs.org.calls()[TOKEN] == logins
    _, version = runs.stored() or ({}, 0)
    assert 2 <= version <= 1 + logins  # compare-and-swap: at most one save per login
    next_run, _ = runs.pull()
    assert next_run.client.logins == 0 and runs.org.calls()[TOKEN] == logins  # still valid


def test_a_save_that_loses_the_race_keeps_the_winner(ledger: Ledger) -> None:
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)

    def process(holder: str) -> StoredSession:
        store = LedgerCredentialStore(ledger, holder)
        return StoredSession(store, NAME, reuse=timedelta(hours=1), now=lambda: now)

    one, two = process("a"), process("b")
    assert one.load() is None and two.load() is None
    one.save(AccessToken("00Dsession!one-0123456789", "https://acme.my.salesforce.com"))
    two.save(AccessToken("00Dsession!two-0123456789", "https://acme.my.salesforce.com"))
    kept = process("c").load()
    assert kept is not None and kept.reveal() == "00Dsession!one-0123456789"
    # The loser learnt the winner's version: its next renewal replaces the session.
    two.save(AccessToken("00Dsession!three-012345678", "https://acme.my.salesforce.com"))
    latest = process("c").load()
    assert latest is not None and latest.reveal() == "00Dsession!three-012345678"
    assert "00Dsession" not in repr(one) + repr(kept)
