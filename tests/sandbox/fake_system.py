"""A minimal SandboxSystem used to test the frame without the vendor stand-ins."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from billsync.sandbox.core import FaultKind, RateLimit, SandboxContext


class FakeSystem:
    name = "fake"

    def __init__(self, context: SandboxContext, name: str = "fake") -> None:
        self.name = name
        self.context = context
        self.items: list[dict[str, Any]] = []
        self.writes = 0

    def routes(self) -> list[BaseRoute]:
        async def items(request: Request) -> Response:
            if request.method == "POST":
                self.writes += 1
                self.items.append(await request.json())
            return JSONResponse({"items": self.items})

        async def ping(request: Request) -> Response:
            self.context.webhooks.deliver("stripe", b'{"ping":1}', lambda body: {"X-Sig": "s"})
            return JSONResponse({"ok": True})

        return [Route("/items", items, methods=["GET", "POST"]), Route("/ping", ping)]

    def admin_routes(self) -> list[BaseRoute]:
        async def count(request: Request) -> Response:
            return JSONResponse({"writes": self.writes})

        return [Route("/count", count)]

    def seed(self, data: dict[str, Any]) -> None:
        self.items.extend(data.get("items", []))

    def reset(self) -> None:
        self.items.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"items": list(self.items)}

    def endpoint_name(self, method: str, path: str) -> str:
        return f"{method} {path}"

    def error_response(self, kind: FaultKind, retry_after_s: int | None) -> Response:
        status = 429 if kind == "rate_limited" else 503
        headers = {"Retry-After": str(retry_after_s)} if retry_after_s else {}
        return JSONResponse({"fake_error": kind}, status_code=status, headers=headers)

    def rate_limits(self) -> list[RateLimit]:
        return [
            RateLimit(
                "per-second", limit=5, window_s=1.0, applies=lambda method, path: path == "/items"
            )
        ]

    def ready_info(self) -> dict[str, str]:
        return {f"{self.name}_secret": "fake-secret"}

    def config_section(self) -> dict[str, Any]:
        return {"enabled": False, "base_url": self.context.base_url}


class FakeSalesforce(FakeSystem):
    def __init__(self, context: SandboxContext) -> None:
        super().__init__(context, "salesforce")


class FakeQuickBooks(FakeSystem):
    def __init__(self, context: SandboxContext) -> None:
        super().__init__(context, "quickbooks")


class FakeStripe(FakeSystem):
    def __init__(self, context: SandboxContext) -> None:
        super().__init__(context, "stripe")
