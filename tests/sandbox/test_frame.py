"""The sandbox frame (listeners, TLS, admin API, faults, limits, webhooks) with fake systems."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from billsync.sandbox.server import parse_rate_limits
from tests.sandbox.harness import LoopThread, start_in_thread


@pytest.fixture
def running(tmp_path: Path) -> Iterator[LoopThread]:
    with start_in_thread(
        tmp_path, seed={"stripe": {"items": [{"id": "seeded"}]}}, rate_limits="real"
    ) as runner:
        yield runner


def test_ready_file_and_config_out(running: LoopThread, tmp_path: Path) -> None:
    info = json.loads((tmp_path / "ready.json").read_text())
    for key in ("admin_url", "salesforce_url", "quickbooks_url", "stripe_url", "ca_bundle"):
        assert key in info
    assert info["salesforce_url"].startswith("https://127.0.0.1:")
    assert info["stripe_secret"] == "fake-secret"
    config = (tmp_path / "billsync.yaml").read_text()
    assert info["stripe_url"] in config


def test_https_with_local_ca_and_seeded_state(running: LoopThread, tmp_path: Path) -> None:
    info = json.loads((tmp_path / "ready.json").read_text())
    response = requests.get(f"{info['salesforce_url']}/items", verify=info["ca_bundle"], timeout=5)
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{info['salesforce_url']}/items", timeout=5)
    state = requests.get(f"{info['admin_url']}/_sandbox/state", timeout=5).json()
    assert state["stripe"]["items"] == [{"id": "seeded"}]


def test_calls_counted_and_reset(running: LoopThread, tmp_path: Path) -> None:
    info = json.loads((tmp_path / "ready.json").read_text())
    for _ in range(3):
        requests.get(f"{info['stripe_url']}/items", timeout=5)
    calls = requests.get(f"{info['admin_url']}/_sandbox/calls", timeout=5).json()
    assert calls["systems"]["stripe"]["GET /items"] == 3
    assert calls["totals"]["stripe"] == 3
    requests.delete(f"{info['admin_url']}/_sandbox/calls", timeout=5)
    assert requests.get(f"{info['admin_url']}/_sandbox/calls", timeout=5).json()["totals"] == {}


def test_rate_limit_answers_with_the_systems_error(running: LoopThread, tmp_path: Path) -> None:
    info = json.loads((tmp_path / "ready.json").read_text())
    statuses = [
        requests.get(f"{info['stripe_url']}/items", timeout=5).status_code for _ in range(8)
    ]
    assert statuses[:5] == [200] * 5
    assert 429 in statuses[5:]


def test_faults_5xx_and_clear(running: LoopThread, tmp_path: Path) -> None:
    info = json.loads((tmp_path / "ready.json").read_text())
    admin = info["admin_url"]
    plan = {"systems": ["quickbooks"], "error_rate_5xx": 1.0}
    assert requests.post(f"{admin}/_sandbox/faults", json=plan, timeout=5).status_code == 200
    assert requests.get(f"{info['quickbooks_url']}/ping", timeout=5).status_code == 503
    assert requests.get(f"{info['stripe_url']}/ping", timeout=5).status_code == 200
    requests.post(f"{admin}/_sandbox/faults", json={}, timeout=5)
    assert requests.get(f"{info['quickbooks_url']}/ping", timeout=5).status_code == 200


def test_bad_fault_plan_is_refused(running: LoopThread, tmp_path: Path) -> None:
    info = json.loads((tmp_path / "ready.json").read_text())
    response = requests.post(f"{info['admin_url']}/_sandbox/faults", json={"rate": 2}, timeout=5)
    assert response.status_code == 400


def test_dropped_connection_after_processing(running: LoopThread, tmp_path: Path) -> None:
    info = json.loads((tmp_path / "ready.json").read_text())
    admin = info["admin_url"]
    plan = {"systems": ["quickbooks"], "drop_rate": 1.0, "drop_phase": "after"}
    requests.post(f"{admin}/_sandbox/faults", json=plan, timeout=5)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{info['quickbooks_url']}/items", json={"id": "x"}, timeout=5)
    requests.post(f"{admin}/_sandbox/faults", json={}, timeout=5)
    # The write happened although the client saw the connection drop.
    assert requests.get(f"{admin}/_sandbox/quickbooks/count", timeout=5).json() == {"writes": 1}


def test_webhooks_are_delivered_with_duplicates(running: LoopThread, tmp_path: Path) -> None:
    info = json.loads((tmp_path / "ready.json").read_text())
    received: list[tuple[str, bytes, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body, self.headers.get("X-Sig")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}"
        requests.post(
            f"{info['admin_url']}/_sandbox/webhooks", json={"url": url, "duplicates": 2}, timeout=5
        )
        requests.get(f"{info['stripe_url']}/ping", timeout=5)
        for _ in range(100):
            if len(received) >= 2:
                break
            asyncio.run(asyncio.sleep(0.05))
        assert received == [("/webhooks/stripe", b'{"ping":1}', "s")] * 2
    finally:
        receiver.shutdown()


@pytest.mark.parametrize(
    ("text", "expected"), [("real", "real"), ("off", "off"), ("scaled:10", 10.0)]
)
def test_parse_rate_limits(text: str, expected: object) -> None:
    assert parse_rate_limits(text) == expected


@pytest.mark.parametrize("text", ["fast", "scaled:0", "scaled:x"])
def test_parse_rate_limits_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate_limits(text)
