"""Admin routes, mounted at `/_sandbox/salesforce/` on the admin server.

They play the org's users and administrators: a salesperson closing or changing a deal
(with its products), an admin resetting sessions, the API allocation running out, a
validation rule rejecting some write-backs. Record changes go through the same store
as the API, so SystemModstamp moves exactly as it would for a real edit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from billsync.sandbox import jsonutil
from billsync.sandbox.salesforce import seeding
from billsync.sandbox.salesforce.cursors import Cursors
from billsync.sandbox.salesforce.errors import WriteError, json_response
from billsync.sandbox.salesforce.oauth import Sessions
from billsync.sandbox.salesforce.render import full_record
from billsync.sandbox.salesforce.schema import ObjectDef
from billsync.sandbox.salesforce.store import Record, Store
from billsync.sandbox.salesforce.usage import ApiUsage

VERSION = "66.0"


class AdminError(Exception):
    pass


@dataclass
class Admin:
    store: Store
    sessions: Sessions
    usage: ApiUsage
    cursors: Cursors

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/expire_sessions", self._wrap(self.expire_sessions), methods=["POST"]),
            Route("/limits", self._wrap(self.limits), methods=["GET", "POST"]),
            Route("/fail_writes", self._wrap(self.fail_writes), methods=["GET", "POST", "DELETE"]),
            Route("/settings", self._wrap(self.settings), methods=["GET", "POST"]),
            Route("/{sobject}", self._wrap(self.create), methods=["POST"]),
            Route(
                "/{sobject}/{record_id}",
                self._wrap(self.record),
                methods=["GET", "PATCH", "DELETE"],
            ),
        ]

    def _wrap(
        self, handler: Callable[[Request, Any], Awaitable[Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = jsonutil.loads(raw) if raw.strip() else {}
                result = await handler(request, body)
            except WriteError as exc:
                return json_response(
                    {"error": exc.message, "errorCode": exc.status_code, "fields": exc.fields}, 400
                )
            except (AdminError, ValueError, TypeError) as exc:
                return json_response({"error": str(exc)}, 400)
            return result if isinstance(result, Response) else json_response(result)

        return endpoint

    async def expire_sessions(self, request: Request, body: Any) -> Any:
        return {"expired": self.sessions.expire_all()}

    async def limits(self, request: Request, body: Any) -> Any:
        if request.method == "POST":
            daily_max, used = body.get("daily_max"), body.get("used")
            for name, value in (("daily_max", daily_max), ("used", used)):
                if value is not None and (not isinstance(value, int) or value < 0):
                    raise AdminError(f"{name} must be a non-negative integer")
            self.usage.configure(daily_max, used)
        return self.usage.describe()

    async def fail_writes(self, request: Request, body: Any) -> Any:
        if request.method == "DELETE":
            self.store.failures.clear()
        elif request.method == "POST":
            self.store.failures.add(_object(body))
        return {"failures": self.store.failures.describe()}

    async def settings(self, request: Request, body: Any) -> Any:
        body = _object(body)
        if "multi_currency" in body:
            self.store.schema.set_multi_currency(bool(body["multi_currency"]))
        if "child_page_size" in body:
            self.cursors.child_page = _positive(body, "child_page_size")
        if "session_timeout_s" in body:
            self.sessions.timeout = timedelta(seconds=_positive(body, "session_timeout_s"))
        return {
            "multi_currency": self.store.schema.multi_currency,
            "child_page_size": self.cursors.child_page,
            "session_timeout_s": int(self.sessions.timeout.total_seconds()),
        }

    async def create(self, request: Request, body: Any) -> Any:
        definition = self._definition(request)
        body = _object(body)
        if definition.name == "Opportunity":
            record = seeding.create_deal(self.store, body, "admin")
        else:
            record = self.store.apply(self.store.prepare_create(definition, body, "admin"))
        return json_response(self._show(definition, record), 201)

    async def record(self, request: Request, body: Any) -> Any:
        definition = self._definition(request)
        record_id = request.path_params["record_id"]
        if request.method == "DELETE":
            self.store.delete(definition, record_id)
            return {"deleted": record_id}
        if request.method == "PATCH":
            body = _object(body)
            if definition.name == "Opportunity":
                record = seeding.update_deal(self.store, record_id, body)
            else:
                prepared = self.store.prepare_update(definition, record_id, body, "admin")
                record = self.store.apply(prepared)
            return self._show(definition, record)
        return self._show(definition, self.store.target(definition, record_id))

    def _definition(self, request: Request) -> ObjectDef:
        definition = self.store.schema.object(request.path_params["sobject"])
        if definition is None:
            raise AdminError(f"unknown object {request.path_params['sobject']!r}")
        return definition

    def _show(self, definition: ObjectDef, record: Record) -> dict[str, Any]:
        shown = full_record(definition, record, VERSION)
        for relationship in definition.children.values():
            child = self.store.schema.get(relationship.child)
            rows = self.store.children(relationship, record["Id"])
            shown[relationship.name] = [full_record(child, row, VERSION) for row in rows]
        return shown


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise AdminError("body must be a JSON object")
    return body


def _positive(body: dict[str, Any], key: str) -> int:
    value = body[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise AdminError(f"{key} must be a positive integer")
    return value
