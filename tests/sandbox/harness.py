"""Run a Sandbox in-process on a background event loop (for tests of single systems).

`start_in_thread(systems={...})` lets a test replace any system by a fake, so one
vendor stand-in can be tested before the others exist. End-to-end tests use the real
subprocess (`billsync.sandbox.launcher.running_sandbox`) instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import requests

from billsync.sandbox import jsonutil
from billsync.sandbox import server as sandbox_server
from billsync.sandbox.server import Sandbox, SandboxOptions

FAKES = {
    "salesforce": "tests.sandbox.fake_system:FakeSalesforce",
    "quickbooks": "tests.sandbox.fake_system:FakeQuickBooks",
    "stripe": "tests.sandbox.fake_system:FakeStripe",
}


class LoopThread:
    """A Sandbox on its own event loop in a daemon thread."""

    def __init__(self, options: SandboxOptions) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sandbox = Sandbox(options)
        self.call(self.sandbox.start())
        self.info: dict[str, Any] = self.sandbox.ready_info()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin API; 4xx answers are returned (tests check refusals), 5xx fail."""
        response = requests.request(
            method,
            f"{self.info['admin_url']}/_sandbox/{path}",
            data=None if body is None else jsonutil.dumps(body),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code < 500, response.text
        return jsonutil.loads(response.content)

    def close(self) -> None:
        self.call(self.sandbox.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@contextmanager
def start_in_thread(
    tmp_path: Path,
    *,
    systems: dict[str, str] | None = None,
    seed: dict[str, Any] | None = None,
    rate_limits: Any = "off",
    **options: Any,
) -> Iterator[LoopThread]:
    """Start a sandbox whose systems default to fakes; pass real ones in `systems`."""
    table = {**FAKES, **(systems or {})}
    seed_file = None
    if seed is not None:
        seed_file = tmp_path / "seed.json"
        seed_file.write_text(jsonutil.dumps(seed))
    sandbox_options = SandboxOptions(
        seed_file=seed_file,
        ready_file=tmp_path / "ready.json",
        config_out=tmp_path / "billsync.yaml",
        state_dir=tmp_path / "sandbox-state",
        rate_limits=rate_limits,
        **options,
    )
    with mock.patch.object(sandbox_server, "SYSTEMS", table):
        runner = LoopThread(sandbox_options)
        try:
            yield runner
        finally:
            runner.close()
