"""The request pipeline every Stripe endpoint shares.

Per request: authenticate the secret key, check `Stripe-Version`, parse the form
parameters, honour `Idempotency-Key` on POSTs (replay or conflict), run the handler,
apply `expand[]`, render JSON with `Request-Id`. Handlers are plain functions of a
`Call` that return a Stripe object (or pre-rendered JSON text) or raise `StripeError`;
they never await, so each runs to completion before another request starts and the
state needs no locks.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billsync.sandbox.stripe import errors
from billsync.sandbox.stripe.errors import StripeError
from billsync.sandbox.stripe.events import API_VERSION
from billsync.sandbox.stripe.form import FormError, parse_form
from billsync.sandbox.stripe.idempotency import MAX_KEY_LENGTH, IdempotencyCache, fingerprint
from billsync.sandbox.stripe.params import Params
from billsync.sandbox.stripe.store import Collection, Obj, Origin, StripeStore
from billsync.sandbox.stripe.views import expand, without_includable
from billsync.sandbox.stripe.wire import dumps, new_id

log = logging.getLogger("billsync.sandbox.stripe")

_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$")
# Objects are rendered in the basil shape (2025-03-31) and later; an older pinned
# version would expect `invoice.charge` and friends, which this sandbox never returns.
OLDEST_VERSION = "2025-03-31"


class RawJSON(str):
    """Handler output that is already JSON text (events are stored rendered)."""


@dataclass
class Call:
    method: str
    path_params: dict[str, str]
    params: Params
    origin: Origin

    def id(self, name: str = "id") -> str:
        return self.path_params[name]


Handler = Callable[[Call], Any]


def retrieve(collection: Collection) -> Handler:
    """`GET /v1/<things>/{id}` for objects served as stored."""

    def handler(call: Call) -> Obj:
        call.params.allow(())
        return collection.require(call.id())

    return handler


class Api:
    def __init__(self, store: StripeStore, api_key: str, idempotency: IdempotencyCache) -> None:
        self.store = store
        self.api_key = api_key
        self.idempotency = idempotency

    def route(self, method: str, path: str, handler: Handler) -> Route:
        async def endpoint(request: Request) -> Response:
            return await self._serve(request, handler)

        return Route(path, endpoint, methods=[method])

    def not_found_route(self) -> Route:
        async def endpoint(request: Request) -> Response:
            error = errors.unrecognized_url(request.method, request.url.path)
            return _response(error.status, error.body(), {"Request-Id": new_id("req_", 14)})

        methods = ["GET", "POST", "DELETE", "PUT", "PATCH"]
        return Route("/{path:path}", endpoint, methods=methods)

    async def _serve(self, request: Request, handler: Handler) -> Response:
        request_id = new_id("req_", 14)
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        try:
            self._authenticate(request)
            _check_version(request.headers.get("stripe-version"))
            data = await _parameters(request)
        except StripeError as exc:
            return _response(exc.status, exc.body(request_id), {**headers, **exc.headers})
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        print_ = ""
        if key is not None:
            headers["Idempotency-Key"] = key
            if len(key) > MAX_KEY_LENGTH:
                too_long = StripeError(
                    f"Idempotency keys can be at most {MAX_KEY_LENGTH} characters long.",
                    saved=False,
                )
                return _response(too_long.status, too_long.body(request_id), headers)
            print_ = fingerprint(request.method, request.url.path, data)
            saved = self.idempotency.lookup(key, self.store.now())
            if saved is not None:
                if saved.fingerprint != print_:
                    conflict = errors.idempotency_conflict(key)
                    return _response(conflict.status, conflict.body(request_id), headers)
                replay = {**saved.headers, **headers, "Idempotent-Replayed": "true"}
                replay["Original-Request"] = saved.request_id
                return Response(saved.content(), saved.status, replay, "application/json")
        status, body, extra, save = self._run(request, handler, data, Origin(request_id, key))
        headers.update(extra)
        content = body.encode()
        if key is not None and save:
            self.idempotency.save(key, print_, status, content, extra, request_id, self.store.now())
        return Response(content, status, headers, "application/json")

    def _run(
        self, request: Request, handler: Handler, data: dict[str, Any], origin: Origin
    ) -> tuple[int, str, dict[str, str], bool]:
        try:
            params = Params(data)
            paths = params.strings("expand")
            data.pop("expand", None)
            result = handler(Call(request.method, dict(request.path_params), params, origin))
            if isinstance(result, RawJSON):
                return 200, result, {}, True
            return (
                200,
                dumps(without_includable(expand(self.store, result, paths), paths)),
                {},
                True,
            )
        except StripeError as exc:
            return exc.status, dumps(exc.body(origin.id)), exc.headers, exc.saved
        except Exception:
            log.exception("stripe sandbox handler failed: %s %s", request.method, request.url.path)
            failure = errors.server_error()
            return failure.status, dumps(failure.body(origin.id)), failure.headers, True

    def _authenticate(self, request: Request) -> None:
        key = presented_key(request.headers.get("authorization", ""))
        if not key:
            raise errors.no_api_key()
        if key != self.api_key:
            raise errors.invalid_api_key(key)


def presented_key(authorization: str) -> str:
    """The secret key in an Authorization header ('' when none)."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if scheme.lower() == "basic":
        # curl -u sk_test_...: sends the key as the Basic user name.
        try:
            return base64.b64decode(credentials).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return ""


def _check_version(version: str | None) -> None:
    if version is None:
        return
    if not _VERSION.match(version):
        raise StripeError(
            f"Invalid Stripe API version: {version}. Versions look like 2026-10-28.endive.",
            param="Stripe-Version",
            saved=False,
        )
    if version[:10] < OLDEST_VERSION:
        raise StripeError(
            f"The billsync sandbox renders objects in the {API_VERSION} shape (2025-03-31.basil "
            f"and later); Stripe-Version {version} is not emulated.",
            param="Stripe-Version",
            saved=False,
        )


async def _parameters(request: Request) -> dict[str, Any]:
    try:
        data = parse_form(request.url.query)
        if request.method == "POST":
            body = (await request.body()).decode("utf-8")
            data.update(parse_form(body))
    except (FormError, UnicodeDecodeError) as exc:
        raise StripeError(str(exc), saved=False) from None
    return data


def _response(status: int, body: dict[str, Any], headers: dict[str, str]) -> Response:
    return Response(dumps(body).encode(), status, headers, "application/json")
