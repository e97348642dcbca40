"""The one rule that stops a connector for the rest of a run (`stops_connector`, recorded
by `RunSummary`): every stage follows it, so no stage stops on anything else."""

from __future__ import annotations

import pytest

from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.sync.engine.cycle import run_cycle
from billsync.sync.engine.summary import CONNECTOR_STOPPED, RunSummary
from billsync.sync.ledger import Ledger
from tests.engine.fakes import Clock, FakeSource, FakeTarget, build, make_deal


def _error(error_class: ErrorClass, code: str | None = None) -> ConnectorError:
    return ConnectorError(system="crm", error_class=error_class, code=code, message="no")


@pytest.mark.parametrize(
    ("error_class", "code", "stopped", "auth_failed"),
    [
        (ErrorClass.AUTH, None, True, True),
        (ErrorClass.AUTH, CONNECTOR_STOPPED, True, False),  # work never sent: no new refusal
        (ErrorClass.RATE_LIMITED, None, False, False),
        (ErrorClass.TRANSIENT, None, False, False),
        (ErrorClass.INVALID_DATA, None, False, False),
        (ErrorClass.NOT_FOUND, None, False, False),
    ],
)
def test_only_refused_credentials_stop_a_connector(
    error_class: ErrorClass, code: str | None, stopped: bool, auth_failed: bool
) -> None:
    summary = RunSummary("r1")
    assert summary.stop_if_refused("crm", _error(error_class, code), stage="test") is stopped
    assert ("crm" in summary.stopped) is stopped
    assert ("crm" in summary.auth_failed) is auth_failed


def test_the_first_reason_a_connector_stopped_is_kept() -> None:
    summary = RunSummary("r1")
    summary.connector_stopped("crm", _error(ErrorClass.AUTH), stage="pull")
    later = ConnectorError(system="crm", error_class=ErrorClass.AUTH, message="later")
    summary.connector_stopped("crm", later, stage="writeback")
    assert summary.stopped == {"crm": "no"}


class _RefusingSink(FakeSource):
    """A deal source whose write-back fails as a whole with ``error``."""

    def __init__(self, error: ConnectorError) -> None:
        super().__init__([make_deal(1)])
        self.error = error

    def write_back(self, updates: object, errors: object = None) -> dict[str, ConnectorError]:
        self.writeback_calls += 1
        raise self.error


@pytest.mark.parametrize(
    ("error_class", "stops"), [(ErrorClass.AUTH, True), (ErrorClass.RATE_LIMITED, False)]
)
def test_a_write_back_stops_the_source_only_on_refused_credentials(
    ledger: Ledger, clock: Clock, error_class: ErrorClass, stops: bool
) -> None:
    source = _RefusingSink(_error(error_class))
    summary = run_cycle(build(ledger, source, FakeTarget(), clock))
    assert source.writeback_calls == 1
    assert ("salesforce" in summary.stopped) is stops
    assert summary.failures >= 1  # either way the write-back is queued for a later run
