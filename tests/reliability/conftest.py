"""The reliability suites' plumbing: the `reliability` marker on every test here, the
size and seed from the environment, the session tally and its summary table, and the
seed printed beside every failure so it can be replayed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import chaos
from tests.reliability.summary import Tally

MARKER = "reliability: the reliability and security suites (tests/reliability; `make chaos`)"
_HERE = Path(__file__).parent
FULL_TIMEOUT_S = 3 * 3600
_tally = Tally()


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so --strict-markers accepts it whatever pyproject says.
    config.addinivalue_line("markers", MARKER)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(_HERE):
            item.add_marker(pytest.mark.reliability)
            item.add_marker(pytest.mark.slow)
            if chaos.size().full:  # hundreds of kills and runs: far past the default 300 s
                item.add_marker(pytest.mark.timeout(FULL_TIMEOUT_S))


@pytest.fixture(scope="session")
def size() -> chaos.Size:
    return chaos.size()


@pytest.fixture(scope="session")
def tally() -> Tally:
    return _tally


@pytest.fixture
def rng(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return chaos.rng_for(request.node.nodeid)


@pytest.fixture(autouse=True)
def _count_test(request: pytest.FixtureRequest) -> None:
    suite = getattr(request.module, "SUITE", None)
    if suite:
        _tally.test_started(suite)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.failed and Path(str(item.fspath)).is_relative_to(_HERE):
        report.sections.append(
            ("chaos seed", f"replay with: {chaos.replay_hint()} pytest '{item.nodeid}'")
        )


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    if _tally.empty:
        return
    terminalreporter.write_sep("=", "reliability summary")
    for line in _tally.render(chaos.size().name, chaos.seed()):
        terminalreporter.write_line(line)
