"""`/metrics`: ledger numbers read at scrape time, process-local webhook and API-call
counters, and the API-call observer around `requests`."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
import structlog
from prometheus_client.parser import text_string_to_metric_families

from billsync.core.protocols import ErrorClass
from billsync.sync.apicalls import counting_api_calls, install_api_call_observer
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head
from billsync.sync.ledger.metrics_reads import MetricsReads, MetricsSnapshot
from billsync.sync.server.metrics import WEBHOOK_OUTCOMES, Metrics
from billsync.sync.server.webhooks import NOT_CONFIGURED, UNKNOWN_CONNECTION

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LEDGER_FAMILIES = (
    "billsync_inbox_lag_seconds",
    "billsync_queue_depth",
    "billsync_last_run_timestamp_seconds",
    "billsync_invoices_created_total",
    "billsync_failures_total",
    "billsync_open_failures",
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def scrape(metrics: Metrics) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    """The rendered exposition, parsed back: sample name -> labels -> value."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return out


def by(label: str, series: dict[frozenset[tuple[str, str]], float]) -> dict[str, float]:
    return {dict(labels)[label]: value for labels, value in series.items()}


# --- ledger-derived metrics, on SQLite and PostgreSQL -------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger' / 'billsync.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def ledger(ledger_url: str, clock: Clock) -> Iterator[Ledger]:
    engine = create_ledger_engine(ledger_url)
    upgrade_to_head(engine)
    yield Ledger(engine, clock=clock)
    engine.dispose()


def fill_inbox(ledger: Ledger, clock: Clock) -> None:
    """Open events: e2 (processing, arrived T0-200s) and e3 (pending, T0-90s)."""
    clock.now = T0 - timedelta(seconds=400)
    ledger.store_inbox_event("stripe", "e4", b"{}", {})
    clock.now = T0 - timedelta(seconds=300)
    ledger.store_inbox_event("stripe", "e1", b"{}", {})
    clock.now = T0 - timedelta(seconds=290)
    failed, done = ledger.claim_inbox_events(2, "worker")
    ledger.mark_inbox_failed(failed.id, "unparseable")  # failed: older, but not open
    ledger.mark_inbox_done(done.id)
    clock.now = T0 - timedelta(seconds=200)
    ledger.store_inbox_event("quickbooks", "e2", b"{}", {})
    clock.now = T0 - timedelta(seconds=90)
    ledger.store_inbox_event("stripe", "e3", b"{}", {})
    clock.now = T0 - timedelta(seconds=80)
    (processing,) = ledger.claim_inbox_events(1, "worker")
    assert processing.event_id == "e2"
    clock.now = T0


def fill_queue(ledger: Ledger) -> None:
    later = T0 + timedelta(hours=1)
    d4 = ledger.enqueue("invoice", "d4", {}, T0)
    ledger.fail_work(d4.id, "transient", "503", "unavailable", T0, dead=False)
    ledger.enqueue("invoice", "d3", {}, T0)
    d7 = ledger.enqueue("writeback", "d7", {}, T0)
    assert len(ledger.lease_due_work(T0, 10, "worker", timedelta(minutes=5))) == 3
    ledger.complete_work(d7.id)  # done
    ledger.enqueue("invoice", "d1", {}, later)  # pending, never failed
    d2 = ledger.enqueue("invoice", "d2", {}, later)
    ledger.fail_work(d2.id, "transient", "timeout", "read timed out", later, dead=False)
    d5 = ledger.enqueue("invoice", "d5", {}, later)
    ledger.fail_work(d5.id, "invalid_data", "6240", "duplicate name", later, dead=True)
    d6 = ledger.enqueue("payment", "d6", {}, later)
    ledger.fail_work(d6.id, "rate_limited", "429", "slow down", later, dead=True)
    assert ledger.resolve_work(d6.id, "ops@example.com", "fixed by hand")  # closed


def fill_runs(ledger: Ledger) -> None:
    for started, outcome, finished in (
        (T0 - timedelta(hours=2), "clean", T0 - timedelta(minutes=110)),
        (T0 - timedelta(hours=1), "failures", T0 - timedelta(minutes=55)),
        (T0 - timedelta(minutes=30), "clean", T0 - timedelta(minutes=25)),
    ):
        ledger.finish_run(ledger.start_run(started), outcome, {}, finished)
    ledger.start_run(T0 - timedelta(minutes=5))  # in progress: no outcome yet


def fill_invoices(ledger: Ledger) -> None:
    def invoice(target: str, external_id: str, deal_id: str | None, status: str = "open"):
        ledger.upsert_invoice(
            target=target,
            external_id=external_id,
            currency="USD",
            total=Decimal("100.00"),
            status=status,
            deal_id=deal_id,
        )

    invoice("quickbooks", "q1", "d1")
    invoice("quickbooks", "q2", "d2")
    invoice("quickbooks", "q3", None)  # billed out of band: not ours
    invoice("stripe", "s1", "d3")
    invoice("quickbooks", "q1", None, status="paid")  # a payment update keeps the deal link
    invoice("quickbooks", "q3", None, status="paid")


def test_scrape_reports_the_ledger_exactly(ledger: Ledger, clock: Clock) -> None:
    fill_inbox(ledger, clock)
    fill_queue(ledger)
    fill_runs(ledger)
    fill_invoices(ledger)
    metrics = Metrics(ledger, now=clock)

    got = scrape(metrics)

    assert got["billsync_ledger_up"] == {frozenset(): 1.0}
    assert got["billsync_inbox_lag_seconds"] == {frozenset(): 200.0}
    assert by("status", got["billsync_queue_depth"]) == {
        "pending": 2,
        "leased": 2,
        "done": 1,
        "dead": 1,
        "resolved": 1,
    }
    assert by("outcome", got["billsync_last_run_timestamp_seconds"]) == {
        "clean": (T0 - timedelta(minutes=25)).timestamp(),
        "failures": (T0 - timedelta(minutes=55)).timestamp(),
    }
    assert by("target", got["billsync_invoices_created_total"]) == {"quickbooks": 2, "stripe": 1}
    zero = {str(cls): 0.0 for cls in ErrorClass}
    # Every failed attempt counts, also d6's although it was resolved since.
    assert by("class", got["billsync_failures_total"]) == zero | {
        "transient": 2,
        "invalid_data": 1,
        "rate_limited": 1,
    }
    assert by("class", got["billsync_open_failures"]) == zero | {"transient": 2, "invalid_data": 1}

    # Read at scrape time: the next scrape sees the ledger move on.
    clock.now = T0 + timedelta(seconds=10)
    (e3,) = ledger.claim_inbox_events(10, "worker")  # e2's claim has not expired yet
    ledger.mark_inbox_done(e3.id)
    assert scrape(metrics)["billsync_inbox_lag_seconds"] == {frozenset(): 210.0}
    clock.now = T0 + timedelta(minutes=10)  # e2's claim expired: a worker takes it
    (e2,) = ledger.claim_inbox_events(10, "worker")
    ledger.mark_inbox_done(e2.id)
    assert scrape(metrics)["billsync_inbox_lag_seconds"] == {frozenset(): 0.0}


def test_empty_ledger_has_zero_series_and_no_invented_ones(ledger: Ledger, clock: Clock) -> None:
    got = scrape(Metrics(ledger, now=clock))

    assert got["billsync_inbox_lag_seconds"] == {frozenset(): 0.0}
    assert by("status", got["billsync_queue_depth"]) == dict.fromkeys(
        ("pending", "leased", "done", "dead", "resolved"), 0.0
    )
    assert by("class", got["billsync_failures_total"]) == {str(c): 0.0 for c in ErrorClass}
    assert by("class", got["billsync_open_failures"]) == {str(c): 0.0 for c in ErrorClass}
    assert "billsync_last_run_timestamp_seconds" not in got  # no run ever finished
    assert "billsync_invoices_created_total" not in got


def test_unreachable_ledger_still_scrapes(tmp_path: Path) -> None:
    # A PostgreSQL URL where nothing listens: connection refused on every scrape.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = create_ledger_engine(f"postgresql://billsync:hunter2@127.0.0.1:{port}/ledger")
    metrics = Metrics(MetricsReads(engine), now=Clock(T0))
    metrics.webhook_event("stripe", "stored")

    with structlog.testing.capture_logs() as logs:
        got = scrape(metrics)

    assert got["billsync_ledger_up"] == {frozenset(): 0.0}
    assert not set(LEDGER_FAMILIES) & set(got)
    assert [e["event"] for e in logs] == ["metrics.ledger_unreachable"]
    assert "hunter2" not in repr(logs)
    assert (
        by(
            "outcome",
            {
                k: v
                for k, v in got["billsync_webhook_events_total"].items()
                if ("provider", "stripe") in k
            },
        )["stored"]
        == 1
    )
    engine.dispose()


def test_unmigrated_ledger_counts_as_down(tmp_path: Path) -> None:
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    got = scrape(Metrics(MetricsReads(engine), now=Clock(T0)))
    assert got["billsync_ledger_up"] == {frozenset(): 0.0}
    assert "billsync_queue_depth" not in got
    engine.dispose()


def test_sqlite_metric_queries_use_indexes(tmp_path: Path) -> None:
    """Each scrape query is answered from an index, except the small runs table.
    (Checked on SQLite; PostgreSQL's plans depend on its table statistics.)"""
    engine = create_ledger_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    upgrade_to_head(engine)
    statements: list[tuple[str, object]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    MetricsReads(engine).metrics_snapshot()
    sa.event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 6
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = " | ".join(
                row[-1]
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            if "FROM runs" in statement:
                continue  # one row per cycle: a plain aggregate is fine
            # SEARCH: the index narrows the rows; SCAN … INDEX: an index walk with no
            # sort (invoices by primary key, work items from a covering index).
            assert plan.startswith("SEARCH") or "USING" in plan, f"{statement!r}: {plan}"
            assert "SCAN" not in plan or "INDEX" in plan, f"{statement!r}: {plan}"
    engine.dispose()


# --- process-local metrics -----------------------------------------------------------


class _EmptyLedger:
    def metrics_snapshot(self) -> MetricsSnapshot:
        return MetricsSnapshot(None, {}, {}, {}, {}, {})


def local_metrics() -> Metrics:
    return Metrics(_EmptyLedger(), now=Clock(T0))


def process_local(metrics: Metrics, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return scrape(metrics)[name]


def test_webhook_events_counted_per_connection_and_outcome() -> None:
    metrics = local_metrics()
    metrics.webhook_connections(["stripe", "quickbooks"])
    metrics.webhook_event("stripe", "stored")
    metrics.webhook_event("stripe", "stored")
    metrics.webhook_event("stripe", "duplicate")
    metrics.webhook_event("quickbooks", "bad_signature")

    series = scrape(metrics)["billsync_webhook_events_total"]

    expected = {
        frozenset({("provider", p), ("outcome", o)}): 0.0
        for p in ("stripe", "quickbooks")
        for o in WEBHOOK_OUTCOMES
    }
    # Requests to a name with no verifier: one series, whatever name was tried.
    expected[frozenset({("provider", UNKNOWN_CONNECTION), ("outcome", NOT_CONFIGURED)})] = 0
    expected[frozenset({("provider", "stripe"), ("outcome", "stored")})] = 2
    expected[frozenset({("provider", "stripe"), ("outcome", "duplicate")})] = 1
    expected[frozenset({("provider", "quickbooks"), ("outcome", "bad_signature")})] = 1
    assert series == expected


@pytest.mark.parametrize(("connection", "outcome"), [("stripe", "forgd"), ("strpe", "stored")])
def test_unknown_webhook_label_is_counted_and_logged(connection: str, outcome: str) -> None:
    metrics = local_metrics()
    metrics.webhook_connections(["stripe"])
    with structlog.testing.capture_logs() as logs:
        metrics.webhook_event(connection, outcome)  # a typo must not fail the request
    key = frozenset({("provider", connection), ("outcome", outcome)})
    assert process_local(metrics, "billsync_webhook_events_total")[key] == 1
    assert [e["event"] for e in logs] == ["metrics.unknown_webhook_label"]


def test_two_apps_do_not_share_counters() -> None:
    first, second = local_metrics(), local_metrics()
    for metrics in (first, second):
        metrics.webhook_connections(["stripe"])
    first.webhook_event("stripe", "stale")
    key = frozenset({("provider", "stripe"), ("outcome", "stale")})
    assert process_local(first, "billsync_webhook_events_total")[key] == 1
    assert process_local(second, "billsync_webhook_events_total")[key] == 0


# --- the API-call observer -----------------------------------------------------------


class _StatusHandler(BaseHTTPRequestHandler):
    """GET /<status> answers with that status."""

    def do_GET(self) -> None:
        self.send_response(int(self.path.strip("/")))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def vendor() -> Iterator[str]:
    """A local HTTP server standing in for a vendor; yields its host:port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def get(session: requests.Session, url: str) -> requests.Response:
    return session.get(url, timeout=5)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # no proxy from the environment for 127.0.0.1
        yield s


def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/200"


def test_observer_reports_status_latency_and_errors(vendor: str, session) -> None:
    metrics = local_metrics()
    original = requests.Session.send
    uninstall = install_api_call_observer({vendor: "stripe"}, metrics.api_call)
    try:
        assert get(session, f"http://{vendor}/200").status_code == 200
        assert get(session, f"http://{vendor}/200").status_code == 200
        assert get(session, f"http://{vendor}/503").status_code == 503
        with pytest.raises(requests.ConnectionError):
            get(session, refused_url())
    finally:
        uninstall()
    assert requests.Session.send is original
    get(session, f"http://{vendor}/200")  # after uninstall: not seen

    calls = process_local(metrics, "billsync_api_calls_total")
    assert calls == {
        frozenset({("system", "stripe"), ("status", "200")}): 2,
        frozenset({("system", "stripe"), ("status", "503")}): 1,
        frozenset({("system", "other"), ("status", "error")}): 1,
    }
    count = process_local(metrics, "billsync_api_latency_seconds_count")
    assert count == {frozenset({("system", "stripe")}): 3, frozenset({("system", "other")}): 1}
    total = process_local(metrics, "billsync_api_latency_seconds_sum")
    assert 0 < total[frozenset({("system", "stripe")})] < 5


def test_observer_and_counting_nest_in_any_order(vendor: str, session) -> None:
    original = requests.Session.send
    seen: list[tuple[str, str]] = []
    uninstall = install_api_call_observer(
        {vendor: "quickbooks"}, lambda system, status, _s: seen.append((system, status))
    )
    with counting_api_calls({vendor: "quickbooks"}) as calls:
        get(session, f"http://{vendor}/200")
        get(session, f"http://{vendor}/429")
        uninstall()  # the server stops while a scheduled run is still counting
        get(session, f"http://{vendor}/200")
        assert requests.Session.send is not original
    get(session, f"http://{vendor}/200")

    assert seen == [("quickbooks", "200"), ("quickbooks", "429")]  # each call once
    assert dict(calls) == {"quickbooks": 3}
    assert requests.Session.send is original
    uninstall()  # twice is harmless
    assert requests.Session.send is original


def test_observer_sees_every_call_from_many_threads(vendor: str) -> None:
    metrics = local_metrics()
    threads, per_thread = 8, 25

    def work() -> None:
        with requests.Session() as s:
            s.trust_env = False
            for _ in range(per_thread):
                get(s, f"http://{vendor}/204")

    uninstall = install_api_call_observer({vendor: "salesforce"}, metrics.api_call)
    try:
        with counting_api_calls({vendor: "salesforce"}) as calls:
            workers = [threading.Thread(target=work) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(30)
    finally:
        uninstall()

    key = frozenset({("system", "salesforce"), ("status", "204")})
    assert process_local(metrics, "billsync_api_calls_total") == {key: threads * per_thread}
    assert calls["salesforce"] == threads * per_thread


def test_a_failing_observer_does_not_fail_the_call(vendor: str, session) -> None:
    def broken(system: str, status: str, seconds: float) -> None:
        raise RuntimeError("metrics bug")

    uninstall = install_api_call_observer({}, broken)
    try:
        with counting_api_calls({}) as calls:
            assert get(session, f"http://{vendor}/200").status_code == 200
    finally:
        uninstall()
    assert calls["other"] == 1
