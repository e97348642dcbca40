"""The Accounting API under `/v3/company/<realmId>/...`, as python-quickbooks calls it.

Every call: maybe a forced throttle, then the bearer token (401 AuthenticationFailed
when unknown, expired or revoked; 403 when it belongs to another company), then the
`requestid` replay check, then the handler. Writes named by a `requestid` store their
answer (per realm, most recent 100,000 ids) and a repeat of the id gets that answer
again without a new write, as QBO does. Notifications for the request's changes go
out once it is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from billsync.sandbox import jsonutil
from billsync.sandbox.core import Clock
from billsync.sandbox.quickbooks import query, search
from billsync.sandbox.quickbooks.batch import run_batch
from billsync.sandbox.quickbooks.cdc import change_data_capture
from billsync.sandbox.quickbooks.errors import (
    QboFault,
    authentication_failed,
    authorization_failed,
    fault_response,
    invalid,
    json_response,
    throttled,
)
from billsync.sandbox.quickbooks.notify import Notifier
from billsync.sandbox.quickbooks.oauth import OAuthServer
from billsync.sandbox.quickbooks.operations import Operations
from billsync.sandbox.quickbooks.spec import Write
from billsync.sandbox.quickbooks.store import BY_LOWER, Realm, StoredResponse
from billsync.sandbox.quickbooks.timefmt import response_time

PREFIX = "/v3/company/{realm}"
Handler = Callable[[Request, Write], Awaitable[Any]]


@dataclass
class ForcedThrottle:
    """`POST /_sandbox/quickbooks/throttle`: the next `remaining` calls get a 429."""

    remaining: int = 0
    as_xml: bool = True

    def take(self) -> bool:
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


class AccountingApi:
    def __init__(
        self,
        clock: Clock,
        realms: dict[str, Realm],
        oauth: OAuthServer,
        ops: Operations,
        notifier: Notifier,
        throttle: ForcedThrottle,
    ) -> None:
        self.clock = clock
        self.realms = realms
        self.oauth = oauth
        self.ops = ops
        self.notifier = notifier
        self.throttle = throttle

    def routes(self) -> list[BaseRoute]:
        def route(path: str, handler: Handler, method: str, replay: bool = False) -> Route:
            return Route(PREFIX + path, self._guard(handler, replay), methods=[method])

        return [
            route("/query", self.query, "GET"),
            route("/query", self.query, "POST"),
            route("/batch", self.batch, "POST", replay=True),
            route("/cdc", self.cdc, "GET"),
            route("/companyinfo/{id}", self.company_info, "GET"),
            route("/preferences", self.preferences, "GET"),
            route("/{entity}/{id}/send", self.send, "POST", replay=True),
            route("/{entity}/{id}", self.read, "GET"),
            route("/{entity}", self.write, "POST", replay=True),
        ]

    def _guard(self, handler: Handler, replay: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            now = self.clock.now()
            if self.throttle.take():
                return throttled(now, self.throttle.as_xml)
            token = self.oauth.authenticate(request)
            if token is None:
                return authentication_failed(now)
            realm = self.realms.get(request.path_params["realm"])
            if realm is None or token.grant.realm_id != realm.realm_id:
                return authorization_failed(now)
            request_id = request.query_params.get("requestid") if replay else None
            if request_id:
                stored = realm.recall(request_id)
                if stored is not None:
                    return Response(stored.body, stored.status, media_type=stored.media_type)
            try:
                body = await handler(request, Write(realm, now))
                response = json_response({**body, "time": response_time(now)})
            except QboFault as fault:
                response = fault_response(fault, now)
            finally:
                self.notifier.flush(realm)
            if request_id:
                media_type = response.media_type or "application/json"
                realm.remember(
                    request_id,
                    StoredResponse(response.status_code, bytes(response.body), media_type),
                )
            return response

        return endpoint

    async def write(self, request: Request, w: Write) -> dict[str, Any]:
        entity = _entity(request)
        body = await _json(request)
        operation = request.query_params.get("operation")
        include = request.query_params.get("include")
        if operation == "delete":
            record = self.ops.delete(w, entity, body)
        elif operation == "void" or (operation == "update" and include == "void"):
            # Invoice: ?operation=void; Payment: ?operation=update&include=void
            # (what python-quickbooks' VoidMixin sends for each).
            record = self.ops.void(w, entity, body)
        elif operation in (None, "create", "update"):
            record = self.ops.save(w, entity, body)
        else:
            raise invalid(f"Unsupported operation {operation!r}", "operation")
        return {entity: record}

    async def read(self, request: Request, w: Write) -> dict[str, Any]:
        entity = _entity(request)
        return {entity: self.ops.read(w, entity, request.path_params["id"])}

    async def send(self, request: Request, w: Write) -> dict[str, Any]:
        entity = _entity(request)
        send_to = request.query_params.get("sendTo")
        return {entity: self.ops.send(w, entity, request.path_params["id"], send_to)}

    async def query(self, request: Request, w: Write) -> dict[str, Any]:
        if request.method == "GET":
            text = request.query_params.get("query", "")
        else:
            text = (await request.body()).decode("utf-8", "replace")
        return {"QueryResponse": search.run(w.realm, query.parse(text))}

    async def batch(self, request: Request, w: Write) -> dict[str, Any]:
        return {"BatchItemResponse": run_batch(self.ops, w, await _json(request))}

    async def cdc(self, request: Request, w: Write) -> dict[str, Any]:
        params = request.query_params
        responses = change_data_capture(
            w.realm, w.now, params.get("entities"), params.get("changedSince")
        )
        return {"CDCResponse": responses}

    async def company_info(self, request: Request, w: Write) -> dict[str, Any]:
        prefs = w.realm.preferences
        return {
            "CompanyInfo": {
                "Id": "1",
                "SyncToken": "0",
                "CompanyName": prefs.company_name,
                "LegalName": prefs.company_name,
                "Country": "US",
                "SupportedLanguages": "en",
                "domain": "QBO",
                "sparse": False,
            }
        }

    async def preferences(self, request: Request, w: Write) -> dict[str, Any]:
        prefs = w.realm.preferences
        return {
            "Preferences": {
                "Id": "1",
                "SyncToken": "0",
                "CurrencyPrefs": {
                    "MultiCurrencyEnabled": prefs.multicurrency,
                    "HomeCurrency": {"value": prefs.home_currency},
                },
                "SalesFormsPrefs": {"CustomTxnNumbers": False},
                "domain": "QBO",
                "sparse": False,
            }
        }


def _entity(request: Request) -> str:
    entity = BY_LOWER.get(request.path_params["entity"].lower())
    if entity is None:
        raise QboFault(
            "500",
            "Unsupported Operation",
            f"Operation Could not find resource for relative : {request.url.path} is not "
            "supported.",
        )
    return entity


async def _json(request: Request) -> Any:
    raw = await request.body()
    try:
        return jsonutil.loads(raw) if raw.strip() else {}
    except ValueError:
        raise invalid("Request body is not valid JSON") from None
