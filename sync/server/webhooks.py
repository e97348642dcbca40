"""`POST /webhooks/<connection>`: verify, store, answer.

One route serves every connection that has a webhook verifier, by the connection's name
(a connector's own name for its plain section, or a ``connections:`` name). The server
names no provider: everything provider-shaped comes from the verifier, so a new
connector's webhooks need no change here.

The receiver does as little as it can, in this order, and refuses as early as it can:
a name with no verifier (404, the same answer whether the connection is unknown or has
no webhook secret, so the answer tells a stranger nothing), the content types the
verifier declares (415), declared and actual size (413, counted while streaming so a
large body is never read whole), the verifier's signature check on the raw bytes (its
refusal carries the status its provider expects), then one inbox row per notification,
keyed by the connection and the provider's event id. A duplicate delivery is a no-op
that still answers 200, so the provider stops retrying; so is a genuine delivery that
carries nothing this connection serves (the verifier leaves those out and logs them).
Processing happens later, in the inbox worker. A refused request stores nothing and is
logged with its reason and size, never its body or signature.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from billsync.core.logs import get_logger
from billsync.core.protocols import (
    DescribesWebhookRequests,
    WebhookRejected,
    WebhookRejectReason,
    WebhookVerifier,
)
from billsync.sync.ledger import Ledger

log = get_logger("billsync.server")

UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
NOT_CONFIGURED = "not_configured"
UNAVAILABLE = "unavailable"
BODY_TIMEOUT = "body_timeout"
IGNORED = "ignored"
"""Outcome of a genuine delivery that carried nothing this connection serves."""
UNKNOWN_CONNECTION = "(unknown)"
"""The connection label of a request to a name with no verifier: the name comes from
the URL, and a metric or log keyed by it would grow with every name a stranger tries."""
# uvicorn has no body read timeout: a client trickling its body a byte at a time would
# hold a request open for as long as it likes. Providers send a few kilobytes at once,
# so a body still arriving after this long is not theirs.
BODY_TIMEOUT_S = 10.0
# The inbox's event_id column (sync/ledger/schema.py): PostgreSQL refuses a longer id
# (SQLite would store it), and a refusal there looked like an unavailable ledger (503,
# retried for ever). No provider sends one this long; refuse it as malformed.
MAX_EVENT_ID = 255


class WebhookAccepted(BaseModel):
    received: int
    stored: int
    duplicates: int


class Problem(BaseModel):
    """Every refusal: a stable machine word and a sentence for the person debugging."""

    error: str
    message: str


class WebhookObserver(Protocol):
    def webhook_connections(self, names: Iterable[str]) -> None:
        """The connections the routes serve (their series start at 0)."""
        ...

    def webhook_event(self, connection: str, outcome: str) -> None:
        """One answered delivery; ``connection`` is `UNKNOWN_CONNECTION` for a name
        with no verifier."""
        ...


class _Refused(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


@dataclass
class WebhookReceiver:
    ledger: Ledger
    verifiers: Mapping[str, WebhookVerifier]
    observer: WebhookObserver
    max_body_bytes: int
    connections: frozenset[str] = frozenset()
    """The connections a notification may be stored under (empty: the route's own)."""
    on_stored: Callable[[], None] = lambda: None
    body_timeout_s: float = BODY_TIMEOUT_S  # money-ok: a duration

    async def receive(self, name: str, request: Request) -> JSONResponse:
        verifier = self.verifiers.get(name)
        if verifier is None:
            return self._not_served(name, request)
        try:
            _check_content_type(request, verifier)
            body = await _read_limited(request, self.max_body_bytes, self.body_timeout_s)
            accepted = await run_in_threadpool(
                self._accept, name, verifier, body, _headers(request)
            )
        except _Refused as refused:
            self._refused(name, request, refused)
            return _problem(refused)
        if accepted.stored:
            self.on_stored()
        return JSONResponse(accepted.model_dump())

    def _not_served(self, name: str, request: Request) -> JSONResponse:
        # Neither the configured names nor the settings to set: the answer goes to
        # whoever asked. The operator finds the names in the server.started log line.
        refused = _Refused(
            404, NOT_CONFIGURED, "no webhooks are received at this address on this server"
        )
        self.observer.webhook_event(UNKNOWN_CONNECTION, refused.error)
        log.warning(
            "webhook.rejected",
            connection=UNKNOWN_CONNECTION,
            requested=_printable(name),
            reason=refused.error,
            status=refused.status,
            fix="point the provider at /webhooks/<connection> for a connection whose "
            "webhook secret is set (server.started lists them)",
            content_length=request.headers.get("content-length"),
            client=request.client.host if request.client else None,
        )
        return _problem(refused)

    def _accept(
        self, name: str, verifier: WebhookVerifier, body: bytes, headers: dict[str, str]
    ) -> WebhookAccepted:
        try:
            notifications = verifier.verify(body, headers)
        except WebhookRejected as rejected:
            raise _Refused(rejected.http_status, str(rejected.reason), rejected.message) from None
        if any(len(note.event_id) > MAX_EVENT_ID for note in notifications):
            raise _Refused(
                400,
                str(WebhookRejectReason.MALFORMED),
                f"an event id is longer than {MAX_EVENT_ID} characters",
            )
        if not notifications:
            self.observer.webhook_event(name, IGNORED)
            log.info("webhook.ignored", connection=name)
        stored = duplicates = 0
        for note in notifications:
            owner = self._owner(name, note.provider)
            if owner is None:
                continue
            try:
                # Keyed by connection: the inbox worker hands each event to the payment
                # feed of that name — the route's own, or the peer the verifier named.
                is_new = self.ledger.store_inbox_event(
                    owner,
                    note.event_id,
                    note.payload.encode("utf-8"),
                    {"event_type": note.event_type},
                )
            except SQLAlchemyError as exc:
                # Not stored, so not acknowledged: the provider retries, and the rows
                # stored before this one make those retries duplicates, not doubles.
                log.error("webhook.store_failed", error=type(exc).__name__)
                raise _Refused(
                    503, UNAVAILABLE, "the ledger is unavailable; the provider will retry"
                ) from None
            stored += int(is_new)
            duplicates += int(not is_new)
            self.observer.webhook_event(owner, "stored" if is_new else "duplicate")
            log.info(
                "webhook.stored" if is_new else "webhook.duplicate",
                connection=owner,
                route=name,
                event_id=note.event_id,
                event_type=note.event_type,
            )
        return WebhookAccepted(received=len(notifications), stored=stored, duplicates=duplicates)

    def _owner(self, route: str, provider: str) -> str | None:
        """The connection a verified notification is stored under: the one its verifier
        named when this server serves it. A genuine notification for a connection not
        served here is acknowledged and logged, never refused (a refusal makes the
        provider retry what no retry fixes)."""
        if provider == route or provider in self.connections:
            return provider
        self.observer.webhook_event(route, IGNORED)
        log.warning("webhook.not_served", route=route, connection=_printable(provider))
        return None

    def _refused(self, name: str, request: Request, refused: _Refused) -> None:
        self.observer.webhook_event(name, refused.error)
        log.warning(
            "webhook.rejected",
            connection=name,
            reason=refused.error,
            status=refused.status,
            detail=refused.message,
            content_length=request.headers.get("content-length"),
            client=request.client.host if request.client else None,
        )


def _problem(refused: _Refused) -> JSONResponse:
    return JSONResponse(
        Problem(error=refused.error, message=refused.message).model_dump(),
        status_code=refused.status,
    )


def _printable(name: str) -> str:
    """A name from the URL as a log may carry it: short, escaped, one line."""
    return name[:64].encode("unicode_escape").decode("ascii")


def _check_content_type(request: Request, verifier: WebhookVerifier) -> None:
    # What the provider sends is the verifier's to say; anything else is not theirs,
    # and refusing it before reading the body costs nothing. A verifier that does not
    # say sees every body and refuses what it cannot read.
    if not isinstance(verifier, DescribesWebhookRequests):
        return
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in verifier.media_types:
        expected = " or ".join(sorted(verifier.media_types))
        raise _Refused(
            415,
            UNSUPPORTED_MEDIA_TYPE,
            f"content type {media_type or 'missing'!r} refused: these webhooks are {expected}",
        )


async def _read_limited(request: Request, limit: int, timeout_s: float) -> bytes:  # money-ok
    """The body, refused with 413 as soon as it is known to exceed ``limit``: from the
    declared Content-Length before reading anything, else while streaming chunks; and
    with 408 when it has not arrived whole within ``timeout_s`` (a slow-loris client)."""
    too_large = _Refused(413, str(WebhookRejectReason.TOO_LARGE), f"body over {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _Refused(
                400, str(WebhookRejectReason.MALFORMED), "Content-Length is not a number"
            )
        if int(declared) > limit:
            raise too_large
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise too_large
    except TimeoutError:
        raise _Refused(
            408, BODY_TIMEOUT, f"the body did not arrive within {timeout_s:g} s"
        ) from None
    return bytes(body)


def _headers(request: Request) -> dict[str, str]:
    """Request headers for the verifier; a repeated header is joined with commas as
    HTTP defines, so a second forged signature header cannot hide the first."""
    joined: dict[str, str] = {}
    for name, value in request.headers.items():
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Problem,
        "description": "Malformed or stale request (some providers' "
        "verifiers answer a failed signature with 400 too)",
    },
    401: {"model": Problem, "description": "Missing or wrong signature"},
    404: {"model": Problem, "description": "No connection with webhooks by this name"},
    408: {"model": Problem, "description": "The body did not arrive in time"},
    413: {"model": Problem, "description": "Body over server.max_body_bytes"},
    415: {"model": Problem, "description": "Not a content type the connection's provider sends"},
    503: {"model": Problem, "description": "Ledger unavailable: nothing stored, retry later"},
}


# The raw body is what the signature covers, so the route reads it itself; this only
# tells the OpenAPI document (and schemathesis) what the configured providers send, as
# their verifiers describe it.
def _document(verifiers: Iterable[WebhookVerifier]) -> dict[str, Any]:
    described = [v for v in verifiers if isinstance(v, DescribesWebhookRequests)]
    headers = {h.lower(): h for v in described for h in v.headers}
    media_types = sorted({m for v in described for m in v.media_types}) or ["*/*"]
    return {
        "parameters": [
            {
                "name": header,
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "Read by the signature check of the connections whose "
                "provider sends it; each connection needs its own provider's headers",
            }
            for _, header in sorted(headers.items())
        ],
        "requestBody": {
            "required": True,
            "content": {
                media_type: {
                    "schema": {"description": "The provider's event, exactly as it signed it"}
                }
                for media_type in media_types
            },
        },
    }


ConnectionName = Annotated[
    str,
    Path(description="The connection whose provider sends these webhooks (e.g. its connector)"),
]


def webhook_router(receiver: WebhookReceiver) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.post(
        "/webhooks/{name}",
        response_model=WebhookAccepted,
        responses=_REFUSALS,
        openapi_extra=_document(receiver.verifiers.values()),
        summary="Receive a signed webhook delivery for a connection",
    )
    async def webhook(name: ConnectionName, request: Request) -> JSONResponse:
        return await receiver.receive(name, request)

    return router
