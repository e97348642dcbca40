"""Transport to the QuickBooks Online Accounting API: auth, limits, retries, errors.

Everything that talks to QuickBooks goes through `QboClient`; the rest of the package
never sees a python-quickbooks exception, and the engine only `ConnectorError`s
classified by the error table (`errors`: fault codes, HTTP statuses, OAuth errors,
network failures).

python-quickbooks is used for what it does well — URLs, ``minorversion`` and
``requestid`` parameters, Decimal JSON parsing (``use_decimal=True``) and Fault
detection (a 200 response can carry a Fault: it raises, we classify). Request bodies
are written by `convert` (its object model always sends ``ExchangeRate: 1``: the
silent 1:1 rate). It is built without an ``auth_client``: it would refresh tokens on
its own, and nothing could store the rotated one first. Its session is the core's
`VendorSession` (`session` says why python-quickbooks' own cannot be used).

- 401: the access token was refused. The client asks the token source for another
  (which stores the rotated refresh token first), repeats the call once, and then
  reports ``auth``.
- In-call retries: the core's one loop (`billsync.core.retrying`): transient and
  rate-limited errors, jittered exponential backoff (at least ``throttle_wait_s`` after
  a throttle: the error table sets it as the Retry-After Intuit never sends), bounded
  attempts, injectable sleep, and the same ``requestid`` on every attempt.
- Client-side limits (`limits`) pace every request; a 429 pauses them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import requests
from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException

from billsync.connectors.quickbooks.convert import dumps_exact
from billsync.connectors.quickbooks.errors import (
    HTTP_STATUS,
    SYSTEM,
    batch_fault,
    exception_error,
    fault_error,
    oauth_error,
    transport_error,
)
from billsync.connectors.quickbooks.limits import RequestLimits
from billsync.connectors.quickbooks.query import select
from billsync.connectors.quickbooks.session import check_base_url
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.core.http import VendorSession
from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, ErrorClass
from billsync.core.retrying import RetryPolicy, call_with_retries

__all__ = [
    "SYSTEM",
    "QboClient",
    "TokenSource",
    "batch_fault",
    "check_base_url",
    "fault_error",
    "oauth_error",
    "transport_error",
]

log = get_logger("billsync.quickbooks")
Sleep = Callable[[float], None]
_A, _C, _R = ErrorClass.AUTH, ErrorClass.CONFLICT, ErrorClass.RATE_LIMITED


class TokenSource(Protocol):
    def access_token(self) -> str: ...

    def refresh_after_401(self, rejected: str) -> str: ...


class _Unauthorized(Exception):
    """HTTP 401 from the API: refresh once and repeat (internal to the client)."""


class QboClient:
    """Calls to one company (realm): auth, limits, retries and error translation."""

    def __init__(
        self,
        settings: QuickBooksSettings,
        tokens: TokenSource,
        *,
        limits: RequestLimits | None = None,
        sleep: Sleep = time.sleep,
        connection: str = "quickbooks",
    ) -> None:
        if not settings.realm_id:
            raise ConnectorError(
                system=SYSTEM,
                error_class=_A,
                message="set quickbooks.realm_id (shown by `billsync auth quickbooks`)",
                code="CONFIG",
            )
        self.settings = settings
        self.realm_id = settings.realm_id
        self._tokens = tokens
        self._sleep = sleep
        self._limits = limits or RequestLimits(
            requests_per_minute=settings.requests_per_minute,
            max_concurrent=settings.max_concurrent,
            batch_requests_per_minute=settings.batch_requests_per_minute,
            sleep=sleep,
        )
        # The cap lets a throttle wait the full ``throttle_wait_s`` (Intuit asks 60 s).
        self._retry = RetryPolicy(
            settings.retry_attempts,
            backoff_s=0.5,
            backoff_max_s=30,
            max_wait_s=max(30, settings.throttle_wait_s),
        )
        # python-quickbooks reads the bearer token from ``session.access_token`` and
        # we read the last status from it: both per thread in `VendorSession`.
        self.session = VendorSession(
            timeout_s=settings.timeout_s,
            ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
            connection=connection,  # two companies call one host: counted apart
        )
        # No auth_client: python-quickbooks would refresh on its own and we could not
        # store the rotated token first. It only builds URLs and parses here.
        self._qb = QuickBooks(
            company_id=self.realm_id, minorversion=settings.minorversion, use_decimal=True
        )
        self._qb.sandbox = settings.environment == "sandbox"
        if settings.base_url:
            base = check_base_url(settings.base_url)
            self._qb.api_url_v3 = self._qb.sandbox_api_url_v3 = base
        self._qb.session = self.session

    @property
    def company_url(self) -> str:
        return f"{self._qb.api_url}/company/{self.realm_id}"

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        request_id: str | None = None,
        content_type: str = "application/json",
        batch: bool = False,
        reading: bool = False,
    ) -> dict[str, Any]:
        """One API call with in-call retries for transient errors and throttling.

        Writes must carry a ``request_id``: QuickBooks replays the original response
        for a repeated id, so the retry of a call whose answer was lost writes nothing.
        """
        data = body if body is None or isinstance(body, str) else dumps_exact(body)
        request = _Request(method, path, data, dict(params or {}), request_id, content_type)
        attempt = partial(self._authorised, request, batch, reading)
        return call_with_retries(self._retry, attempt, sleep=self._sleep)

    def query(self, statement: str) -> dict[str, Any]:
        """The ``QueryResponse`` of one query (``{}`` when nothing matched)."""
        result = self.call(
            "POST", "query", body=statement, content_type="application/text", reading=True
        )
        response = result.get("QueryResponse")
        return response if isinstance(response, dict) else {}

    def query_all(
        self, entity: str, where: str = "", page_size: int = 1000
    ) -> list[dict[str, Any]]:
        """Every row, paged with STARTPOSITION (1-based) / MAXRESULTS (≤ 1000)."""
        rows: list[dict[str, Any]] = []
        start = 1
        conditions = (where,) if where else ()
        while True:
            statement = select(
                entity, *conditions, order_by="Id", start=start, max_results=page_size
            )
            page = self.query(statement).get(entity, [])
            rows.extend(page)
            if len(page) < page_size:
                return rows
            start += page_size

    def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        """GET one object; ConnectorError(not_found) when it is gone."""
        record: dict[str, Any] = self.call("GET", f"{entity.lower()}/{entity_id}", reading=True)[
            entity
        ]
        return record

    def update(
        self,
        entity: str,
        entity_id: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Fetch the object, build the update from it (``change`` returns the body, with
        the fetched ``Id`` and ``SyncToken``) and save. QuickBooks refuses a stale
        SyncToken with 5010: refetch, reapply and retry once, then give up as
        ``conflict``. (A lost response whose retry meets 5010 lands here too; the
        changes billsync makes are absolute, so reapplying them is correct.)"""
        for attempt in (1, 2):
            current = self.read(entity, entity_id)
            try:
                record: dict[str, Any] = self.call(
                    "POST", entity.lower(), body=change(current), params=params
                )[entity]
                return record
            except ConnectorError as exc:
                if exc.error_class is not _C or attempt == 2:
                    raise
                log.info("quickbooks.stale_sync_token", entity=entity, id=entity_id)
        raise AssertionError("unreachable")

    # --- internals ---------------------------------------------------------------

    def _authorised(self, request: _Request, batch: bool, reading: bool) -> dict[str, Any]:
        token = self._tokens.access_token()
        try:
            return self._once(token, request, batch, reading)
        except _Unauthorized:
            log.info("quickbooks.access_token_refused", realm=self.realm_id)
        token = self._tokens.refresh_after_401(token)
        try:
            return self._once(token, request, batch, reading)
        except _Unauthorized:
            rule = HTTP_STATUS[401]
            raise ConnectorError(
                system=SYSTEM, error_class=rule.error_class, message=rule.fix, code="401"
            ) from None

    def _once(self, token: str, request: _Request, batch: bool, reading: bool) -> dict[str, Any]:
        self.session.use_token(token)
        wait_s = self.settings.throttle_wait_s
        with self._limits.slot(batch=batch):
            try:
                result = self._qb.make_request(
                    request.method,
                    f"{self.company_url}/{request.path}",
                    request_body=request.data,
                    content_type=request.content_type,
                    params=dict(request.params),
                    request_id=request.request_id,
                )
            except AuthorizationException as exc:
                if exc.error_code == 401:
                    raise _Unauthorized from None
                error = exception_error(exc, self.session.last_status, reading, wait_s)
            except QuickbooksException as exc:
                error = exception_error(exc, self.session.last_status, reading, wait_s)
            except requests.RequestException as exc:
                error = transport_error(exc)
            else:
                return dict(result)
        if error.error_class is _R:
            self._limits.pause(wait_s)
        log.info(
            "quickbooks.call_failed",
            method=request.method,
            path=request.path.split("/")[0],
            error_class=str(error.error_class),
            code=error.code,
        )
        raise error


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    data: str | None
    params: dict[str, str]
    request_id: str | None
    content_type: str
