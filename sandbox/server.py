"""`billsync sandbox serve`: one process, four listeners, shared state.

Listeners: the admin API, Salesforce (HTTPS, local CA), QuickBooks Online with the
Intuit OAuth endpoints, and Stripe. With `--port 0` each takes a free port; with
`--port N` they take N (admin), N+1 (Salesforce), N+2 (QuickBooks) and N+3 (Stripe).
Everything runs on one asyncio event loop, so the systems' state needs no locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import signal
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette

from billsync.sandbox import jsonutil
from billsync.sandbox.admin import build_admin_app
from billsync.sandbox.config_out import MAPPING_FILE, billsync_config, routing_mapping
from billsync.sandbox.core import Clock, RateLimitMode, SandboxContext, SandboxSystem
from billsync.sandbox.profiles import SINGLE, Profile
from billsync.sandbox.runtime import CallCounter, FaultHolder, RateLimiter, SystemMiddleware
from billsync.sandbox.tls import LocalTLS, make_local_tls
from billsync.sandbox.webhooks import WebhookOutbox

SYSTEMS: dict[str, str] = {
    "salesforce": "billsync.sandbox.salesforce.system:SalesforceSandbox",
    "quickbooks": "billsync.sandbox.quickbooks.system:QuickBooksSandbox",
    "stripe": "billsync.sandbox.stripe.system:StripeSandbox",
}
HTTPS_SYSTEMS = frozenset({"salesforce"})  # simple-salesforce forces https


@dataclass
class SandboxOptions:
    host: str = "127.0.0.1"
    port: int = 0
    seed_file: Path | None = None
    webhook_url: str | None = None
    config_out: Path | None = None
    ready_file: Path | None = None
    rate_limits: RateLimitMode = "real"
    state_dir: Path | None = None
    profile: Profile = SINGLE
    """Which companies to stand in for (`billsync.sandbox.profiles`)."""
    system_options: dict[str, Any] = field(default_factory=dict)


def parse_rate_limits(text: str) -> RateLimitMode:
    """'real', 'off' or 'scaled:K' (the vendors' budgets K times faster)."""
    if text in ("real", "off"):
        return text  # type: ignore[return-value]
    if text.startswith("scaled:"):
        factor = float(text.removeprefix("scaled:"))  # money-ok: a time scale
        if factor > 0:
            return factor
    raise ValueError("--rate-limits must be real, off or scaled:K with K > 0")


class _QuietServer(uvicorn.Server):
    """Several uvicorn servers share one loop; the sandbox handles signals itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Sandbox:
    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.clock = Clock()
        self.calls = CallCounter()
        self.faults = FaultHolder()
        self.outbox = WebhookOutbox(options.webhook_url)
        self.state_dir = options.state_dir or Path(tempfile.mkdtemp(prefix="billsync-sandbox-"))
        self.tls: LocalTLS = make_local_tls(self.state_dir / "tls")
        self.systems: dict[str, SandboxSystem] = {}
        self.urls: dict[str, str] = {}
        self._servers: list[_QuietServer] = []
        self._sockets: dict[str, socket.socket] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def _bind(self) -> None:
        names = ["admin", *SYSTEMS]
        for offset, name in enumerate(names):
            port = self.options.port + offset if self.options.port else 0
            # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets
            # whose proto says TCP, and without it every keep-alive request waits ~40 ms
            # for Nagle + delayed ACK.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.options.host, port))
            sock.listen(2048)
            sock.setblocking(False)
            self._sockets[name] = sock
            scheme = "https" if name in HTTPS_SYSTEMS else "http"
            self.urls[name] = f"{scheme}://{self.options.host}:{sock.getsockname()[1]}"

    def _build_systems(self) -> None:
        for name, target in SYSTEMS.items():
            module_name, _, class_name = target.partition(":")
            cls = getattr(importlib.import_module(module_name), class_name)
            context = SandboxContext(
                clock=self.clock,
                webhooks=self.outbox,
                base_url=self.urls[name],
                options={
                    **self.options.system_options,
                    "ca_bundle": str(self.tls.ca_bundle),
                    "rate_limits": self.options.rate_limits,
                    "profile": self.options.profile,
                },
            )
            self.systems[name] = cls(context)

    def _app_for(self, name: str) -> Any:
        system = self.systems[name]
        inner = Starlette(routes=system.routes())
        limiter = RateLimiter(system.rate_limits(), self.options.rate_limits)
        return SystemMiddleware(inner, system, self.calls, self.faults, limiter)

    async def start(self) -> None:
        self._bind()
        self._build_systems()
        if self.options.seed_file:
            self.seed(jsonutil.loads(self.options.seed_file.read_text(encoding="utf-8")))
        self.outbox.start()
        apps: dict[str, Any] = {"admin": build_admin_app(self)}
        apps.update({name: self._app_for(name) for name in self.systems})
        for name, app in apps.items():
            tls = name in HTTPS_SYSTEMS
            config = uvicorn.Config(
                app,
                lifespan="off",
                access_log=False,
                log_level="critical",
                timeout_keep_alive=30,
                ssl_certfile=str(self.tls.cert_file) if tls else None,
                ssl_keyfile=str(self.tls.key_file) if tls else None,
            )
            server = _QuietServer(config)
            self._servers.append(server)
            self._tasks.append(asyncio.create_task(server.serve(sockets=[self._sockets[name]])))
        while not all(server.started for server in self._servers):
            await asyncio.sleep(0.01)
        self._announce()

    def seed(self, data: dict[str, Any]) -> None:
        unknown = set(data) - set(self.systems)
        if unknown:
            raise ValueError(f"unknown seed sections: {sorted(unknown)}")
        for name, section in data.items():
            self.systems[name].seed(section)

    def reset(self) -> None:
        for system in self.systems.values():
            system.reset()
        self.calls.reset()
        self.outbox.log.clear()

    def state(self) -> dict[str, Any]:
        return {name: system.snapshot() for name, system in self.systems.items()}

    def ready_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "admin_url": self.urls["admin"],
            "salesforce_url": self.urls["salesforce"],
            "quickbooks_url": self.urls["quickbooks"],
            "stripe_url": self.urls["stripe"],
            "ca_bundle": str(self.tls.ca_bundle),
            "state_dir": str(self.state_dir),
            "pid": os.getpid(),
            "profile": self.options.profile.name,
        }
        for system in self.systems.values():
            info.update(system.ready_info())
        return info

    def billsync_config(self) -> dict[str, Any]:
        """A complete billsync config pointing every connector at this sandbox."""
        return billsync_config(self.systems, self.options.profile, self._config_directory())

    def _config_directory(self) -> Path:
        return (self.options.config_out or self.state_dir / "x").parent

    def _announce(self) -> None:
        info = self.ready_info()
        if self.options.config_out:
            text = "# Written by `billsync sandbox serve`: every connector points at the sandbox.\n"
            text += yaml.safe_dump(self.billsync_config(), sort_keys=False)
            mapping = routing_mapping(self.options.profile)
            if mapping is not None:
                # Written first: the config names it.
                _write_atomically(
                    self._config_directory() / MAPPING_FILE,
                    "# Written by `billsync sandbox serve`: routes deals to the sandbox's "
                    "companies by Billing_Platform__c.\n"
                    + yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True),
                )
            _write_atomically(self.options.config_out, text)
        line = json.dumps(info, sort_keys=True)
        if self.options.ready_file:
            _write_atomically(self.options.ready_file, line + "\n")
        print(line, flush=True)

    async def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        await self.outbox.stop()
        # uvicorn checks should_exit every 0.1 s; give in-flight requests a moment.
        _, pending = await asyncio.wait(self._tasks, timeout=5)
        for task in pending:
            task.cancel()


def _write_atomically(path: Path, text: str) -> None:
    # Readers poll for the ready file: they must never see it half written.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


async def serve(options: SandboxOptions) -> None:
    """Run the sandbox until SIGINT or SIGTERM."""
    sandbox = Sandbox(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sandbox.start()
    await stop.wait()
    await sandbox.stop()
