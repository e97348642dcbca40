"""What `GET /metrics` reports, in the Prometheus text format.

Two kinds of numbers, kept apart because they come from different places:

- **From the ledger, read at scrape time** (`LedgerCollector`): inbox lag, work-queue
  depth, the last run per outcome, invoices created, failing work. The sync cycles
  that produce them usually run in another process (a cron `billsync run`) and
  `serve` may have several workers, so a counter in this process would miss most of
  the work; the ledger sees all of it. If the ledger cannot be read, these families
  are left out and ``billsync_ledger_up`` is 0: the scrape still succeeds, so the
  alert says "ledger down" rather than "target down".
- **Process-local**: webhook deliveries this process answered, and the vendor API
  calls it made (the inbox worker resolving webhook notifications, scheduled runs),
  fed by `billsync.sync.apicalls.install_api_call_observer`. With ``--workers N`` each worker
  keeps its own and a scrape is answered by whichever worker accepts it, so these
  counters jump between workers' values; scale with replicas of one worker each (each
  its own scrape target) where they matter.

Connections: every series that concerns one connection carries its name (``qbo_uk``;
a single-company deployment's are named after their kinds). Labels that held the
connector's name before connections existed keep their names for the dashboards that
query them and now hold the connection: ``target`` on invoices created, ``provider``
on webhook deliveries, ``system`` on API calls. A family new with connections labels it
``connection`` (open failures per connection; credential warnings per connection, from
each connector's health report, `billsync.core.plugins.CredentialHealth`).

Each `Metrics` owns its registry (never prometheus_client's global one), so tests and
several app instances in one process do not collide.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy.exc import SQLAlchemyError

from billsync.core.logs import get_logger
from billsync.core.protocols import ErrorClass, WebhookRejectReason
from billsync.sync.ledger.base import Clock, utc_now
from billsync.sync.ledger.metrics_reads import MetricsSnapshot
from billsync.sync.server.ops.throttle import Refusal
from billsync.sync.server.webhooks import (
    BODY_TIMEOUT,
    IGNORED,
    NOT_CONFIGURED,
    UNAVAILABLE,
    UNKNOWN_CONNECTION,
    UNSUPPORTED_MEDIA_TYPE,
)

log = get_logger("billsync.server")

# What the webhook route reports: stored or duplicate for accepted events, ignored for
# a genuine delivery with nothing the connection serves, else why the request was
# refused (the connectors' reasons plus the receiver's own).
WEBHOOK_OUTCOMES = (
    "stored",
    "duplicate",
    IGNORED,
    *(str(reason) for reason in WebhookRejectReason),
    UNSUPPORTED_MEDIA_TYPE,
    NOT_CONFIGURED,
    UNAVAILABLE,
    BODY_TIMEOUT,
    "error",
)

# Vendor calls take from tens of milliseconds to the SDKs' timeouts (30–60 s); the
# default buckets stop at 10 s and are too fine below 50 ms to matter here.
API_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class MetricsSource(Protocol):
    """What the ledger must offer (`Ledger` with the `MetricsReads` store)."""

    def metrics_snapshot(self) -> MetricsSnapshot: ...


class LedgerCollector:
    """Turns one ledger snapshot per scrape into metric families."""

    def __init__(self, source: MetricsSource, now: Clock) -> None:
        self._source = source
        self._now = now

    def describe(self) -> Iterator[Metric]:
        # Names only, so the registry can refuse a clash without querying the ledger.
        yield from _ledger_up(1)
        yield from _families(None, self._now())

    def collect(self) -> Iterator[Metric]:
        now = self._now()
        try:
            snapshot = self._source.metrics_snapshot()
        except SQLAlchemyError as exc:
            # The class only: driver messages can carry the host and the SQL.
            log.warning("metrics.ledger_unreachable", error=type(exc).__name__)
            yield from _ledger_up(0)
            return
        yield from _ledger_up(1)
        yield from _families(snapshot, now)


class CredentialSource(Protocol):
    def credential_warnings(self, now: datetime) -> Mapping[str, int]:
        """Per connection whose connector reports on the credentials it keeps in the
        ledger, how many warnings the reports give now (0: all fine)."""
        ...


class CredentialCollector:
    """``billsync_credential_warnings{connection}``: what `billsync status` says of each
    connection's stored credentials (refresh token or connection limit running out),
    read at scrape time, so an alert fires before a company has to reconnect."""

    def __init__(self, source: CredentialSource, now: Clock) -> None:
        self._source = source
        self._now = now

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        try:
            warnings = self._source.credential_warnings(self._now())
        except SQLAlchemyError as exc:  # billsync_ledger_up already says the ledger is down
            log.warning("metrics.credentials_unreadable", error=type(exc).__name__)
            return
        for connection, count in sorted(warnings.items()):
            family.add_metric([connection], count)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "billsync_credential_warnings",
            "Warnings of each connection's stored credentials as its connector reports "
            "them (as billsync status; 0: fine).",
            labels=["connection"],
        )


def _ledger_up(value: int) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "billsync_ledger_up", "1 if the ledger could be read for this scrape, else 0.", value
    )


def _families(snapshot: MetricsSnapshot | None, now: datetime) -> Iterator[Metric]:
    """The ledger-derived families; with no snapshot, empty ones (for describe)."""
    lag = GaugeMetricFamily(
        "billsync_inbox_lag_seconds",
        "Age of the oldest webhook event not yet processed (0 when caught up).",
    )
    depth = GaugeMetricFamily(
        "billsync_queue_depth", "Work items in the retry queue per status.", labels=["status"]
    )
    last_run = GaugeMetricFamily(
        "billsync_last_run_timestamp_seconds",
        "When the latest sync cycle with this outcome finished (Unix time).",
        labels=["outcome"],
    )
    created = CounterMetricFamily(
        "billsync_invoices_created",
        "Invoices billsync created in each target connection (from the ledger; each invoice once).",
        labels=["target"],
    )
    failures = CounterMetricFamily(
        "billsync_failures",
        "Failed attempts of work items (invoice, write-back, payment feed) per error "
        "class, by every process (from the ledger's audit trail).",
        labels=["class"],
    )
    open_failures = GaugeMetricFamily(
        "billsync_open_failures",
        "Work items whose last attempt failed and that await a retry or an operator, "
        "per error class.",
        labels=["class"],
    )
    # Beside billsync_open_failures rather than a label added to it, so the sums and
    # alerts already written on that family keep their meaning.
    connection_failures = GaugeMetricFamily(
        "billsync_connection_open_failures",
        "Open failures (as billsync_open_failures) per connection the work item is for "
        "(a target or payment provider) and error class; only pairs that have some.",
        labels=["connection", "class"],
    )
    if snapshot is not None:
        oldest = snapshot.oldest_open_inbox_at
        lag.add_metric([], 0 if oldest is None else max((now - oldest).total_seconds(), 0))
        for status, n in sorted(snapshot.work_items_by_status.items()):
            depth.add_metric([status], n)
        for outcome, at in sorted(snapshot.last_run_finished_at.items()):
            last_run.add_metric([outcome], at.timestamp())
        for target, n in sorted(snapshot.invoices_created_by_target.items()):
            created.add_metric([target], n)
        # Every class present, so an alert on one class has a series to compare.
        every_class = {str(cls): 0 for cls in ErrorClass}
        for cls, n in sorted((every_class | snapshot.failed_attempts_by_class).items()):
            failures.add_metric([cls], n)
        for cls, n in sorted((every_class | snapshot.open_failures_by_class).items()):
            open_failures.add_metric([cls], n)
        for (connection, cls), n in sorted(snapshot.open_failures_by_connection.items()):
            connection_failures.add_metric([connection, cls], n)
    yield from (lag, depth, last_run, created, failures, open_failures, connection_failures)


class Metrics:
    """The metrics of one `billsync serve` app: `render()` is the `/metrics` body.

    Wire the process-local parts explicitly: the app names the connections it serves
    webhooks for (`webhook_connections`), the webhook route calls `webhook_event`, and
    the app installs `api_call` as the API-call observer for its lifetime::

        uninstall = install_api_call_observer(hosts_from_settings(s), metrics.api_call)
    """

    def __init__(
        self,
        ledger: MetricsSource,
        *,
        now: Clock = utc_now,
        credentials: CredentialSource | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        # The label is still called provider (dashboards query it); its value is the
        # connection's name, the one in /webhooks/<connection>.
        self._webhook_events = Counter(
            "billsync_webhook_events",
            "Webhook deliveries answered by this process, per connection (label "
            "provider) and outcome.",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self._webhook_connections = {UNKNOWN_CONNECTION}
        self._webhook_events.labels(UNKNOWN_CONNECTION, NOT_CONFIGURED)
        self._api_calls = Counter(
            "billsync_api_calls",
            "Vendor API calls made by this process, per connection (label system) and HTTP "
            "status (error: no response).",
            ["system", "status"],
            registry=self.registry,
        )
        self._api_latency = Histogram(
            "billsync_api_latency_seconds",
            "Duration of vendor API calls made by this process, per connection (label system).",
            ["system"],
            buckets=API_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._login_refusals = Counter(
            "billsync_ops_login_refusals",
            "Ops tokens refused by this process (login form and API), per reason: "
            "wrong_token, throttled, locked_out, overall_limit.",
            ["reason"],
            registry=self.registry,
        )
        for reason in Refusal:
            self._login_refusals.labels(str(reason))
        self.registry.register(LedgerCollector(ledger, now))
        if credentials is not None:
            self.registry.register(CredentialCollector(credentials, now))

    def webhook_connections(self, names: Iterable[str]) -> None:
        """The connections whose webhooks the app serves: every (connection, outcome)
        series exists from the start, since rate() needs a series that exists before
        its first increment, or the first forged request never shows."""
        for name in names:
            self._webhook_connections.add(name)
            for outcome in WEBHOOK_OUTCOMES:
                self._webhook_events.labels(name, outcome)

    def webhook_event(self, connection: str, outcome: str) -> None:
        """Count one answered delivery.

        A label outside the known sets is still counted (a metric must never fail the
        request it describes) but logged, so a typo in a route shows up in the logs
        and in the tests instead of quietly starting a series no dashboard reads."""
        if connection not in self._webhook_connections or outcome not in WEBHOOK_OUTCOMES:
            log.warning("metrics.unknown_webhook_label", provider=connection, outcome=outcome)
        self._webhook_events.labels(connection, outcome).inc()

    def api_call(self, system: str, status: str, seconds: float) -> None:
        """An `ApiCallObserver`: one vendor call with its status and duration."""
        self._api_calls.labels(system, status).inc()
        self._api_latency.labels(system).observe(seconds)

    def login_refused(self, reason: str) -> None:
        """Count one refused ops token (`billsync.sync.server.ops.throttle.Refusal`)."""
        self._login_refusals.labels(reason).inc()

    def render(self) -> tuple[bytes, str]:
        """The `/metrics` response: (body, content type)."""
        # generate_latest writes the classic text format. prometheus_client's own
        # HTTP handler labels that output version 0.0.4 (its CONTENT_TYPE_LATEST now
        # says 1.0.0, which it only sends when the scraper asks for it); do the same.
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
