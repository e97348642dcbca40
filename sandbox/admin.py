"""The admin API (`admin_url`): state, seed, reset, faults, call counts, webhooks, clock.

System-specific actions (pay an invoice, change a deal, …) are each system's
`admin_routes()`, mounted here under `/_sandbox/<system>/`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from billsync.sandbox import jsonutil
from billsync.sandbox.runtime import FaultPlan

if TYPE_CHECKING:
    from billsync.sandbox.server import Sandbox


def build_admin_app(sandbox: Sandbox) -> Starlette:
    async def state(request: Request) -> Response:
        # Systems keep money as Decimal; JSONResponse cannot write it exactly.
        return Response(jsonutil.dumps(sandbox.state()), media_type="application/json")

    async def seed(request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        try:
            sandbox.seed(body)
        except (ValueError, KeyError, TypeError) as exc:
            return _bad_request(str(exc))
        return JSONResponse({"seeded": sorted(body)})

    async def reset(request: Request) -> Response:
        sandbox.reset()
        return JSONResponse({"reset": True})

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(sandbox.faults.plan.describe())
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        try:
            sandbox.faults.plan = FaultPlan.from_json(body)
        except (ValueError, TypeError) as exc:
            return _bad_request(str(exc))
        return JSONResponse(sandbox.faults.plan.describe())

    async def calls(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.calls.reset()
        return JSONResponse(sandbox.calls.snapshot())

    async def webhooks(request: Request) -> Response:
        outbox = sandbox.outbox
        if request.method == "POST":
            body = await _json_body(request)
            if isinstance(body, Response):
                return body
            if "url" in body:
                outbox.url = body["url"] or None
            if "duplicates" in body:
                outbox.duplicates = max(1, int(body["duplicates"]))
        return JSONResponse(
            {
                "url": outbox.url,
                "duplicates": outbox.duplicates,
                "pending": outbox.pending(),
                "deliveries": [d.describe() for d in outbox.log],
            }
        )

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = await _json_body(request)
            if isinstance(body, Response):
                return body
            sandbox.clock.offset += timedelta(seconds=int(body.get("advance_s", 0)))
        return JSONResponse({"now": sandbox.clock.now().isoformat()})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, **sandbox.ready_info()})

    routes: list[BaseRoute] = [
        Route("/_sandbox/state", state, methods=["GET"]),
        Route("/_sandbox/seed", seed, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST"]),
        Route("/_sandbox/calls", calls, methods=["GET", "DELETE"]),
        Route("/_sandbox/webhooks", webhooks, methods=["GET", "POST"]),
        Route("/_sandbox/clock", clock, methods=["GET", "POST"]),
        Route("/_sandbox/health", health, methods=["GET"]),
    ]
    for name, system in sandbox.systems.items():
        routes.append(Mount(f"/_sandbox/{name}", routes=system.admin_routes()))
    return Starlette(routes=routes)


async def _json_body(request: Request) -> dict[str, Any] | Response:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = jsonutil.loads(raw)
    except json.JSONDecodeError as exc:
        return _bad_request(f"body is not JSON: {exc.msg}")
    if not isinstance(body, dict):
        return _bad_request("body must be a JSON object")
    return body


def _bad_request(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)
