"""The REST data API routes: versions, limits, query/queryAll, sObjects.

Every route under `/services/data/vNN.N/` checks the session, counts the call against
the daily allocation and answers with `Sforce-Limit-Info`. Unknown paths and methods get
Salesforce's JSON errors, not the web framework's plain-text ones.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from billsync.sandbox import jsonutil
from billsync.sandbox.salesforce import describe, ids
from billsync.sandbox.salesforce.collections import Collections
from billsync.sandbox.salesforce.cursors import Cursors, QueryCursor, batch_size
from billsync.sandbox.salesforce.errors import (
    SalesforceError,
    WriteError,
    error_response,
    json_response,
    not_found,
)
from billsync.sandbox.salesforce.oauth import OAuth, Sessions
from billsync.sandbox.salesforce.render import full_record
from billsync.sandbox.salesforce.schema import ObjectDef
from billsync.sandbox.salesforce.soql_engine import plan, top_rows
from billsync.sandbox.salesforce.soql_fields import QueryError
from billsync.sandbox.salesforce.soql_lexer import SoqlSyntaxError
from billsync.sandbox.salesforce.soql_parser import parse
from billsync.sandbox.salesforce.store import Store
from billsync.sandbox.salesforce.usage import ApiUsage
from billsync.sandbox.salesforce.versions import supported, versions

log = logging.getLogger(__name__)
ALL_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"]
Handler = Callable[[Request, str], Awaitable[Response]]


def method_not_allowed(method: str, allowed: list[str]) -> SalesforceError:
    return SalesforceError(
        405,
        "METHOD_NOT_ALLOWED",
        f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}",
    )


async def json_body(request: Request) -> Any:
    try:
        return jsonutil.loads(await request.body())
    except ValueError as exc:
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from None


def query_message(query: str, message: str, position: int | None) -> str:
    """Salesforce quotes the offending line with a caret under the error."""
    if position is None:
        return message
    row = query.count("\n", 0, position) + 1
    line_start = query.rfind("\n", 0, position) + 1
    line_end = query.find("\n", position)
    line = query[line_start : line_end if line_end != -1 else len(query)]
    column = position - line_start
    return f"\n{line}\n{' ' * column}^\nERROR at Row:{row}:Column:{column + 1}\n{message}"


@dataclass
class DataApi:
    store: Store
    cursors: Cursors
    sessions: Sessions
    usage: ApiUsage
    oauth: OAuth
    collections: Collections

    def routes(self) -> list[BaseRoute]:
        data = "/services/data/{version}"
        table: list[tuple[str, Handler]] = [
            ("", self.resources),
            ("/limits", self.limits),
            ("/query", self.query),
            ("/queryAll", self.query_all),
            ("/query/{locator}", self.query_more),
            ("/queryAll/{locator}", self.query_more),
            ("/sobjects", self.describe_global),
            ("/sobjects/{sobject}", self.sobject),
            ("/sobjects/{sobject}/describe", self.describe),
            ("/sobjects/{sobject}/{record_id}", self.record),
            ("/composite/sobjects", self.composite_sobjects),
        ]
        routes: list[BaseRoute] = [
            Route("/services/oauth2/token", self.oauth.token, methods=["POST"]),
            Route("/services/data", self.versions, methods=["GET"]),
            Route("/services/data/", self.versions, methods=["GET"]),
        ]
        for suffix, handler in table:
            endpoint = self.guarded(handler)
            routes.append(Route(data + suffix, endpoint, methods=ALL_METHODS))
            routes.append(Route(data + suffix + "/", endpoint, methods=ALL_METHODS))
        return routes

    def guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            version = request.path_params["version"]
            if not supported(version):
                return error_response(not_found())
            if not self.sessions.check(request.headers.get("authorization")):
                return error_response(
                    SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
                )
            try:
                self.usage.count()
                response = await handler(request, version[1:])
            except SalesforceError as exc:
                response = error_response(exc)
            except Exception:
                # A sandbox bug: answer like Salesforce's own 500s, and keep the trace.
                error_id = secrets.token_hex(6)
                log.exception("salesforce sandbox error %s on %s", error_id, request.url.path)
                response = error_response(
                    SalesforceError(
                        500,
                        "UNKNOWN_EXCEPTION",
                        "An unexpected error occurred. Please include this ErrorId if you "
                        f"contact support: {error_id}",
                    )
                )
            response.headers["Sforce-Limit-Info"] = self.usage.header()
            return response

        return endpoint

    async def versions(self, request: Request) -> Response:
        return json_response(versions())

    async def resources(self, request: Request, version: str) -> Response:
        base = f"/services/data/v{version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite")
        return json_response({name: f"{base}/{name}" for name in names})

    async def limits(self, request: Request, version: str) -> Response:
        used = self.usage.used()
        return json_response(
            {
                "DailyApiRequests": {
                    "Max": self.usage.daily_max,
                    "Remaining": max(0, self.usage.daily_max - used),
                },
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            }
        )

    async def query(self, request: Request, version: str) -> Response:
        return self._run_query(request, version, "query", deleted=False)

    async def query_all(self, request: Request, version: str) -> Response:
        return self._run_query(request, version, "queryAll", deleted=True)

    def _run_query(
        self, request: Request, version: str, endpoint: str, *, deleted: bool
    ) -> Response:
        if request.method != "GET":
            raise method_not_allowed(request.method, ["GET", "HEAD"])
        text = request.query_params.get("q")
        if not text:
            raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
        schema, tables = self.store.schema, self.store.tables
        try:
            query_plan = plan(schema, parse(text), tables)
        except SoqlSyntaxError as exc:
            message = query_message(text, exc.message, exc.position)
            raise SalesforceError(400, "MALFORMED_QUERY", message) from None
        except QueryError as exc:
            message = query_message(text, exc.message, exc.position)
            raise SalesforceError(400, exc.error_code, message) from None
        rows = top_rows(schema, query_plan, tables, deleted=deleted)
        cursor = QueryCursor(
            query_plan,
            rows,
            batch_size(request.headers.get("sforce-query-options")),
            deleted,
            version,
            endpoint,
            self.cursors.clock.now(),
        )
        return json_response(self.cursors.first_page(cursor))

    async def query_more(self, request: Request, version: str) -> Response:
        if request.method != "GET":
            raise method_not_allowed(request.method, ["GET", "HEAD"])
        return json_response(self.cursors.next_page(request.path_params["locator"]))

    async def describe_global(self, request: Request, version: str) -> Response:
        if request.method != "GET":
            raise method_not_allowed(request.method, ["GET", "HEAD"])
        return json_response(describe.describe_global(self.store.schema, version))

    async def describe(self, request: Request, version: str) -> Response:
        definition = self._object(request)
        if request.method != "GET":
            raise method_not_allowed(request.method, ["GET", "HEAD"])
        return json_response(describe.describe(self.store.schema, definition, version))

    async def sobject(self, request: Request, version: str) -> Response:
        definition = self._object(request)
        if request.method == "GET":
            summary = describe.summary(definition, version)
            return json_response({"objectDescribe": summary, "recentItems": []})
        if request.method != "POST":
            raise method_not_allowed(request.method, ["GET", "HEAD", "POST"])
        body = await json_body(request)
        if not isinstance(body, dict):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "the body must be a JSON object")
        try:
            record = self.store.apply(self.store.prepare_create(definition, body, "api"))
        except WriteError as exc:
            raise exc.as_request_error() from None
        location = f"/services/data/v{version}/sobjects/{definition.name}/{record['Id']}"
        return json_response(
            {"id": record["Id"], "success": True, "errors": []}, 201, {"Location": location}
        )

    async def record(self, request: Request, version: str) -> Response:
        definition = self._object(request)
        record_id = request.path_params["record_id"]
        allowed = ["GET", "HEAD", "PATCH", "DELETE"]
        if request.method not in allowed:
            raise method_not_allowed(request.method, allowed)
        if not ids.is_well_formed(record_id) or not record_id.startswith(definition.prefix):
            # Anything that is not an id of this object is read as an external id value.
            raise SalesforceError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {record_id}",
            )
        if request.method == "PATCH":
            return await self._update(request, definition, record_id)
        try:
            record = self.store.target(definition, record_id)
        except WriteError as exc:
            raise _missing(exc) from None
        if request.method == "DELETE":
            self.store.delete(definition, record_id)
            return Response(status_code=204)
        fields = self._field_list(definition, request.query_params.get("fields"))
        return json_response(full_record(definition, record, version, fields))

    async def _update(self, request: Request, definition: ObjectDef, record_id: str) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "the body must be a JSON object")
        try:
            self.store.target(definition, record_id)
        except WriteError as exc:
            raise _missing(exc) from None
        try:
            self.store.apply(self.store.prepare_update(definition, record_id, body, "api"))
        except WriteError as exc:
            raise exc.as_request_error() from None
        return Response(status_code=204)

    async def composite_sobjects(self, request: Request, version: str) -> Response:
        if request.method not in ("POST", "PATCH"):
            raise method_not_allowed(request.method, ["POST", "PATCH"])
        body = await json_body(request)
        return self.collections.handle(body, creating=request.method == "POST")

    def _object(self, request: Request) -> ObjectDef:
        definition = self.store.schema.object(request.path_params["sobject"])
        if definition is None:
            raise not_found()
        return definition

    @staticmethod
    def _field_list(definition: ObjectDef, text: str | None) -> list[str] | None:
        if not text:
            return None
        names = []
        for name in (part.strip() for part in text.split(",")):
            field = definition.field(name)
            if field is None:
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on entity '{definition.name}'. If you are "
                    "attempting to use a custom field, be sure to append the '__c' after the "
                    "custom field name. Please reference your WSDL or the describe call for "
                    "the appropriate names.",
                )
            names.append(field.name)
        return names


def _missing(exc: WriteError) -> SalesforceError:
    if exc.status_code == "ENTITY_IS_DELETED":
        return SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted")
    return not_found()
