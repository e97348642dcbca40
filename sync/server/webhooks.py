"""`POST /webhooks/stripe` and `POST /webhooks/quickbooks`: verify, store, answer.

The receiver does as little as it can, in this order, and refuses as early as it can:
content type (415), declared and actual size (413, counted while streaming so a large
body is never read whole), the connector's signature check on the raw bytes (400 for
Stripe, 401 for Intuit), then one inbox row per notification keyed by the provider's
event id. A duplicate delivery is a no-op that still answers 200, so the provider stops
retrying. Processing happens later, in the inbox worker. A refused request stores
nothing and is logged with its reason and size, never its body or signature.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from billsync.core.logs import get_logger
from billsync.core.protocols import WebhookRejected, WebhookRejectReason, WebhookVerifier
from billsync.sync.ledger import Ledger

log = get_logger("billsync.server")

PROVIDERS = ("stripe", "quickbooks")
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
NOT_CONFIGURED = "not_configured"
UNAVAILABLE = "unavailable"
BODY_TIMEOUT = "body_timeout"
# uvicorn has no body read timeout: a client trickling its body a byte at a time would
# hold a request open for as long as it likes. Stripe and Intuit send a few kilobytes
# at once, so a body still arriving after this long is not theirs.
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
    def webhook_event(self, provider: str, outcome: str) -> None: ...


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
    on_stored: Callable[[], None] = lambda: None
    body_timeout_s: float = BODY_TIMEOUT_S  # money-ok: a duration

    async def receive(self, provider: str, request: Request) -> JSONResponse:
        try:
            verifier = self._verifier(provider)
            _check_content_type(request)
            body = await _read_limited(request, self.max_body_bytes, self.body_timeout_s)
            accepted = await run_in_threadpool(self._accept, verifier, body, _headers(request))
        except _Refused as refused:
            self._refused(provider, request, refused)
            return JSONResponse(
                Problem(error=refused.error, message=refused.message).model_dump(),
                status_code=refused.status,
            )
        if accepted.stored:
            self.on_stored()
        return JSONResponse(accepted.model_dump())

    def _verifier(self, provider: str) -> WebhookVerifier:
        verifier = self.verifiers.get(provider)
        if verifier is None:
            setting = {
                "stripe": "stripe.webhook_secrets",
                "quickbooks": "quickbooks.verifier_token",
            }
            raise _Refused(
                404,
                NOT_CONFIGURED,
                f"{provider} webhooks are not configured on this server: set "
                f"{setting.get(provider, provider)} and restart",
            )
        return verifier

    def _accept(
        self, verifier: WebhookVerifier, body: bytes, headers: dict[str, str]
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
        stored = 0
        for note in notifications:
            try:
                is_new = self.ledger.store_inbox_event(
                    verifier.provider,
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
            self.observer.webhook_event(verifier.provider, "stored" if is_new else "duplicate")
            log.info(
                "webhook.stored" if is_new else "webhook.duplicate",
                provider=verifier.provider,
                event_id=note.event_id,
                event_type=note.event_type,
            )
        return WebhookAccepted(
            received=len(notifications), stored=stored, duplicates=len(notifications) - stored
        )

    def _refused(self, provider: str, request: Request, refused: _Refused) -> None:
        self.observer.webhook_event(provider, refused.error)
        log.warning(
            "webhook.rejected",
            provider=provider,
            reason=refused.error,
            status=refused.status,
            detail=refused.message,
            content_length=request.headers.get("content-length"),
            client=request.client.host if request.client else None,
        )


def _check_content_type(request: Request) -> None:
    # Both providers send JSON (Stripe adds "; charset=utf-8"); anything else is not
    # theirs, and refusing it before reading the body costs nothing.
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise _Refused(
            415,
            UNSUPPORTED_MEDIA_TYPE,
            f"content type {media_type or 'missing'!r} refused: webhooks are application/json",
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
    400: {"model": Problem, "description": "Malformed, stale, or (Stripe) unsigned request"},
    401: {"model": Problem, "description": "Missing or wrong Intuit signature"},
    404: {"model": Problem, "description": "This provider's webhooks are not configured"},
    408: {"model": Problem, "description": "The body did not arrive in time"},
    413: {"model": Problem, "description": "Body over server.max_body_bytes"},
    415: {"model": Problem, "description": "Content type is not application/json"},
    503: {"model": Problem, "description": "Ledger unavailable: nothing stored, retry later"},
}


# The raw body is what the signature covers, so the route reads it itself; this only
# tells the OpenAPI document (and schemathesis) what the providers send.
def _document(signature_header: str, what: str) -> dict[str, Any]:
    return {
        "parameters": [
            {
                "name": signature_header,
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": f"{what} over the raw body",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"type": "object", "description": "Stripe event, Intuit legacy"},
                            {"type": "array", "description": "Intuit CloudEvents batch"},
                        ]
                    }
                }
            },
        },
    }


def webhook_router(receiver: WebhookReceiver) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.post(
        "/webhooks/stripe",
        response_model=WebhookAccepted,
        responses=_REFUSALS,
        openapi_extra=_document("Stripe-Signature", "t=<unix time>,v1=<HMAC-SHA256 hex>"),
        summary="Receive a signed Stripe event",
    )
    async def stripe_webhook(request: Request) -> JSONResponse:
        return await receiver.receive("stripe", request)

    @router.post(
        "/webhooks/quickbooks",
        response_model=WebhookAccepted,
        responses=_REFUSALS,
        openapi_extra=_document("intuit-signature", "base64 HMAC-SHA256 with the verifier token"),
        summary="Receive a signed Intuit notification",
    )
    async def quickbooks_webhook(request: Request) -> JSONResponse:
        return await receiver.receive("quickbooks", request)

    return router
