"""The ops pages in a real browser: headless Debian chromium driven by Playwright
(``executable_path=/usr/bin/chromium``; Playwright never downloads a browser here).

The ledger is filled by the real engine against in-memory fakes: one deal fails to
invoice (QuickBooks says its item is inactive), one is rejected (its billing platform
is 'Xero'), two are invoiced; the hand-built AR book (tests/ops/ar_fixture.py) adds
invoices in three currencies. Through the pages an operator signs in, sees the
failures, retries the first — the next run (the same engine, the target healthy again)
invoices it and it leaves the failure log — resolves the second with a note, and opens
the aging report with its chart. Requests without the token are refused.

Screenshots go to ``$BILLSYNC_TEST_ARTIFACTS/ops-browser`` (default
``test-artifacts/ops-browser`` in the repository, which git ignores); their paths are
printed. Without /usr/bin/chromium the test skips, unless BILLSYNC_REQUIRE_BROWSER=1
(CI), where that is a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from billsync.sync.engine.cycle import run_cycle
from billsync.sync.ledger import Ledger, create_ledger_engine, upgrade_to_head, work_subject
from billsync.sync.server.app import ServerParts, create_app
from billsync.sync.server.metrics import Metrics
from tests.engine.fakes import Clock, FakeSource, FakeTarget, build, invalid, make_deal
from tests.ops.ar_fixture import build_book
from tests.server.live import serving

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "browser-ops-token-31f7c2d9-a04e6b1c58d3f927"
REPO = Path(__file__).resolve().parents[2]
INACTIVE = (
    "QuickBooks 610: Object Not Found: Item assigned to this transaction has been deleted. "
    "Before you can modify this transaction, you must restore SKU-9 (deleted)."
)


def _unavailable(reason: str) -> None:
    if os.environ.get("BILLSYNC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, but BILLSYNC_REQUIRE_BROWSER=1")
    pytest.skip(f"{reason} (apt-get install chromium; CI installs it)")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"browser tests need Debian's chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("browser tests need the playwright package (the dev extra)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    base = Path(os.environ.get("BILLSYNC_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder = base / "ops-browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Shop:
    """The ledger, the fakes and the engine the server and the 'next run' share."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = create_ledger_engine(f"sqlite:///{tmp_path / 'billsync.db'}")
        upgrade_to_head(self.db)
        self.clock = Clock()
        self.ledger = Ledger(self.db, clock=self.clock)
        self.deals = [
            make_deal(1, name="Acme renewal"),
            make_deal(2, name="Beta expansion", target_hint="Xero"),
            make_deal(3, name="Gamma seats"),
            make_deal(4, name="Delta add-on"),
        ]
        self.source = FakeSource(self.deals)
        self.target = FakeTarget()
        self.target.errors[self.deals[0].id] = invalid(INACTIVE)  # fails once, then works

    def run(self) -> str:
        return run_cycle(build(self.ledger, self.source, self.target, self.clock)).outcome

    def failure_id(self, deal_id: str) -> int:
        found = [item for item in self.ledger.failures() if item.payload.get("deal_id") == deal_id]
        assert len(found) == 1, found
        return found[0].id


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    shop = Shop(tmp_path)
    assert shop.run() == "failures"
    build_book(shop.ledger)
    yield shop
    shop.db.dispose()


def test_an_operator_retries_resolves_and_reads_the_aging_report(
    chromium: Any, shop: Shop, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    failed, rejected = shop.deals[0].id, shop.deals[1].id
    failed_id, rejected_id = shop.failure_id(failed), shop.failure_id(rejected)
    parts = ServerParts(
        ledger=shop.ledger, verifiers={}, metrics=Metrics(shop.ledger, now=shop.clock),
        max_body_bytes=1 << 20, ops_token=SecretStr(TOKEN), clock=shop.clock,
    )  # fmt: skip
    shots: list[Path] = []

    def shot(page: Any, name: str) -> None:
        path = artifacts / f"{len(shots) + 1}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    with serving(create_app(parts)) as base:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        page = context.new_page()
        try:
            # Not signed in: the page sends the browser to the login form.
            page.goto(f"{base}/ops/failures")
            expect(page).to_have_url(f"{base}/ops/login?next=/ops/failures")
            page.get_by_label("Ops token").fill("not-the-token")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_contain_text("That is not the ops token")
            page.get_by_label("Ops token").fill(TOKEN)
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{base}/ops/failures")

            # The failures of the seeded run.
            expect(page.locator(f"#failure-{failed_id}")).to_contain_text("Acme renewal")
            expect(page.locator(f"#failure-{failed_id}")).to_contain_text("invalid_data")
            expect(page.locator(f"#failure-{rejected_id}")).to_contain_text("VALIDATION")
            expect(page.locator("tbody tr")).to_have_count(2)
            shot(page, "failures")

            # Retry the QuickBooks one from its page.
            page.get_by_role("link", name=str(failed_id), exact=True).click()
            expect(page.locator("#advice")).to_contain_text("QuickBooks item 'SKU-9'")
            page.get_by_role("button", name="Retry", exact=True).click()
            expect(page.get_by_role("status")).to_contain_text(
                f"Failure {failed_id} is queued for the next run (dead → pending"
            )
            expect(page.locator("h1")).to_contain_text("pending")
            expect(page.locator("#audit")).to_contain_text("work.retry")
            shot(page, "retried")

            # The next run picks it up; the target accepts it this time.
            assert shop.run() == "clean"
            item = shop.ledger.get_work(failed_id)
            assert item is not None and item.status == "done"
            assert shop.target.per_deal()[failed] == 1
            page.get_by_role("link", name="Failures", exact=True).click()
            expect(page.locator(f"#failure-{rejected_id}")).to_be_visible()
            expect(page.locator(f"#failure-{failed_id}")).to_have_count(0)
            page.goto(f"{base}/ops/failures/{failed_id}")
            expect(page.locator("main")).to_contain_text("it may have succeeded since")

            # Resolve the rejected deal with a note.
            page.goto(f"{base}/ops/failures/{rejected_id}")
            expect(page.locator("#advice")).to_contain_text("'Xero' is not a")
            note = "Billed by hand in QuickBooks as invoice 1043"
            page.get_by_label("Why is it resolved?").fill(note)
            page.get_by_role("button", name="Resolve").click()
            expect(page.get_by_role("status")).to_contain_text(
                f"Failure {rejected_id} is resolved."
            )
            expect(page.locator("#audit")).to_contain_text(note)
            expect(page.locator("#audit")).to_contain_text("ops-web:")
            shot(page, "resolved")
            [entry] = [e for e in shop.ledger.audit_for(work_subject(rejected_id))
                       if e.action == "work.resolve"]  # fmt: skip
            assert entry.details["note"] == note and entry.actor.startswith("ops-web:")
            page.get_by_role("link", name="Failures", exact=True).click()
            expect(page.locator("tbody")).to_contain_text("No failures match.")
            page.get_by_label("Status").select_option("resolved")
            page.get_by_role("button", name="Filter").click()
            expect(page.locator(f"#failure-{rejected_id}")).to_contain_text("resolved")

            # The aging report and its chart.
            page.get_by_role("link", name="Aging report").click()
            chart = page.get_by_role("img", name=re.compile(r"AR aging as of 2026-11-23"))
            expect(chart).to_be_visible()
            page.get_by_label("As of", exact=True).fill("2026-03-31")
            page.get_by_role("button", name="Show").click()
            expect(page).to_have_url(re.compile(r"as_of=2026-03-31"))
            chart = page.get_by_role("img", name=re.compile(r"AR aging as of 2026-03-31"))
            expect(chart).to_be_visible()
            bars = page.locator("svg.aging-chart rect[data-bucket]")
            assert bars.count() >= 5  # USD in three buckets, EUR in two, JPY in one
            usd = page.get_by_role("row", name=re.compile(r"^USD"))
            expect(usd).to_contain_text("2820.00")
            box = chart.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 60
            shot(page, "aging")

            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("status")).to_contain_text("Signed out.")
            page.goto(f"{base}/ops/runs")
            expect(page).to_have_url(f"{base}/ops/login?next=/ops/runs")

            # Without the token: the API refuses, the pages send to the login form.
            stranger = chromium.new_context()
            try:
                refused = stranger.request.get(f"{base}/api/failures")
                assert refused.status == 401 and refused.json()["error"] == "unauthorized"
                allowed = stranger.request.get(
                    f"{base}/api/failures", headers={"Authorization": f"Bearer {TOKEN}"}
                )
                assert allowed.status == 200
                other = stranger.new_page()
                other.goto(f"{base}/ops/reports/aging")
                expect(other.get_by_label("Ops token")).to_be_visible()
            finally:
                stranger.close()
        finally:
            context.close()
    for path in shots:
        assert path.stat().st_size > 5_000
        print(f"screenshot: {path}")
