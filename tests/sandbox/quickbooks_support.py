"""Shared set-up for the QuickBooks sandbox tests: a running sandbox with the real
QuickBooks system, and unmodified intuitlib / python-quickbooks clients pointed at it.

intuitlib fetches its discovery document from developer.intuit.com when an AuthClient
is built; the tests point its DISCOVERY_URL table at the sandbox instead (no network).
requests-oauthlib refuses plain http unless OAUTHLIB_INSECURE_TRANSPORT is set, and the
sandbox serves QuickBooks over http, so the tests set it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import intuitlib.config
from intuitlib.client import AuthClient
from quickbooks import QuickBooks

from tests.sandbox.harness import LoopThread, start_in_thread

SYSTEM = "billsync.sandbox.quickbooks.system:QuickBooksSandbox"


@dataclass
class QboEnv:
    runner: LoopThread

    @property
    def info(self) -> dict[str, Any]:
        return self.runner.info

    @property
    def url(self) -> str:
        return str(self.info["quickbooks_url"])

    @property
    def realm_id(self) -> str:
        return str(self.info["quickbooks_realm_id"])

    @property
    def system(self) -> Any:
        return self.runner.sandbox.systems["quickbooks"]

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return self.runner.admin(method, path, body)

    def state(self) -> dict[str, Any]:
        return dict(self.admin("GET", "quickbooks/state"))

    def auth_client(self) -> AuthClient:
        discovery = {"sandbox": f"{self.url}/.well-known/openid_sandbox_configuration/"}
        with mock.patch.dict(intuitlib.config.DISCOVERY_URL, discovery):
            return AuthClient(
                self.info["quickbooks_client_id"],
                self.info["quickbooks_client_secret"],
                "http://127.0.0.1/callback",
                environment="sandbox",
            )

    def client(self, refresh_token: str | None = None) -> QuickBooks:
        qb = QuickBooks(
            auth_client=self.auth_client(),
            refresh_token=refresh_token or self.info["quickbooks_refresh_token"],
            company_id=self.realm_id,
            minorversion=75,
            use_decimal=True,
        )
        qb.sandbox_api_url_v3 = f"{self.url}/v3"
        return qb


@contextmanager
def qbo_sandbox(tmp_path: Path, **options: Any) -> Iterator[QboEnv]:
    with (
        mock.patch.dict(os.environ, {"OAUTHLIB_INSECURE_TRANSPORT": "1"}),
        start_in_thread(tmp_path, systems={"quickbooks": SYSTEM}, **options) as runner,
    ):
        yield QboEnv(runner)
