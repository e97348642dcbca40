"""Transport to the Ledgerly API: the session token, retries and the error table.

Everything in this package that talks to Ledgerly goes through `LedgerlyClient.get` or
`LedgerlyClient.post`; nothing else sees an HTTP status, and the engine only sees the
`ConnectorError`s `classify` makes from the table `ERRORS`.

Ledgerly quirks this module exists for (all FICTIONAL, see tests/fake_ledgerly.py):
- The API key is exchanged for a session token (``POST /v1/sessions``, one hour). The
  token is kept in the ledger (``context.credentials``, row ``ledgerly:<connection>``) so
  later runs and the webhook server reuse it instead of opening a session each; sessions
  do not rotate, so two processes opening one at once is harmless (no lease needed). The
  row also remembers when the API key itself expires, which `health` reports.
- A session can end early (``401 session_expired``, e.g. after a password reset): open a
  new one once and repeat the request, inside the same attempt.
- ``429`` carries ``Retry-After`` in seconds; billsync's one retry loop
  (`billsync.core.retrying`) honours it, capped.
- A POST with an ``Idempotency-Key`` seen in the last 24 h replays the first answer; the
  same key with another body is ``409 idempotency_conflict``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import requests

from billsync.core.http import VendorSession
from billsync.core.logs import SecretScrubber
from billsync.core.protocols import ConnectorError, CredentialStore, ErrorClass, ErrorRule
from billsync.core.retrying import RetryPolicy, call_with_retries
from billsync_ledgerly.settings import CREDENTIAL_SHAPES, LedgerlySettings

__all__ = ["CREDENTIAL_PREFIX", "ERRORS", "ErrorRow", "LedgerlyClient", "classify"]

CREDENTIAL_PREFIX = "ledgerly:"  # ledger credential rows this connector owns
SESSION_MARGIN = timedelta(minutes=2)  # open a new session this long before expiry

_T, _R, _A = ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED, ErrorClass.AUTH
_I, _N = ErrorClass.INVALID_DATA, ErrorClass.NOT_FOUND


@dataclass(frozen=True)
class ErrorRow:
    """One row of the error table: Ledgerly's error ``code`` (None: any), the HTTP
    statuses it comes with, and what billsync does next."""

    code: str | None
    statuses: tuple[int, ...]
    rule: ErrorRule


# --- the error table ---------------------------------------------------------------
# The answer's error code decides first; a status alone decides only for rows without a
# code. Fix texts are what an operator reads (and what ops advice matches).
ERRORS: tuple[ErrorRow, ...] = (
    ErrorRow(
        "rate_limited",
        (429,),
        ErrorRule(_R, "Ledgerly's request allocation is spent for now; billsync waits as asked"),
    ),
    ErrorRow(
        "invalid_api_key",
        (401,),
        ErrorRule(
            _A,
            "Ledgerly refused the API key: create one in Ledgerly → Settings → API and set "
            "the connection's api_key",
        ),
    ),
    ErrorRow(
        "api_key_expired",
        (401,),
        ErrorRule(
            _A,
            "the Ledgerly API key has expired (keys live 90 days): create a new one and set "
            "the connection's api_key",
        ),
    ),
    ErrorRow(
        "forbidden",
        (403,),
        ErrorRule(
            _A,
            "the Ledgerly API key lacks a scope: give it customers:write, invoices:write, "
            "catalog:read and events:read",
        ),
    ),
    ErrorRow("not_found", (404,), ErrorRule(_N, "not in this Ledgerly account")),
    ErrorRow(
        "idempotency_conflict",
        (409,),
        ErrorRule(
            _I,
            "an earlier attempt used this idempotency key with other values; billsync looks "
            "the invoice up before creating another. If none is found, edit the deal (a new "
            "revision gets a new key)",
        ),
    ),
    ErrorRow(
        "unknown_catalog_code",
        (422,),
        ErrorRule(
            _I,
            "a line names a catalog code Ledgerly does not have: add it in Ledgerly → "
            "Catalog or map the product under products.ledgerly in the mapping file",
        ),
    ),
    ErrorRow(
        "validation_error",
        (400, 422),
        ErrorRule(_I, "Ledgerly refused the values sent; its message names the field"),
    ),
    ErrorRow(None, (500, 502, 503, 504), ErrorRule(_T, "Ledgerly had a server error; retried")),
)
NETWORK = ErrorRule(_T, "could not reach Ledgerly (network or timeout); retried")
OTHER_4XX = ErrorRule(_I, "Ledgerly refused the request; its message says why")


def _rule(status: int, code: str | None) -> ErrorRule:
    by_code = next((row.rule for row in ERRORS if code and row.code == code), None)
    if by_code is not None:
        return by_code
    by_status = next(
        (row.rule for row in ERRORS if row.code is None and status in row.statuses), None
    )
    if by_status is not None:
        return by_status
    return ErrorRule(_T, ERRORS[-1].rule.fix) if status >= 500 else OTHER_4XX


def classify(
    response: requests.Response, *, system: str, operation: str, scrub: SecretScrubber
) -> ConnectorError:
    """A refused request as a ConnectorError; the message quotes Ledgerly's own message
    (scrubbed), never a header or the request body."""
    status = response.status_code
    error: Mapping[str, Any] = {}
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
    except ValueError:
        pass  # an HTML error page from a proxy: the status decides
    code = str(error["code"]) if error.get("code") else None
    rule = _rule(status, code)
    retry_after = None
    header = response.headers.get("Retry-After", "")
    if rule.error_class is ErrorClass.RATE_LIMITED and header.isdigit():
        retry_after = timedelta(seconds=int(header))
    detail = scrub.scrub(" ".join(str(error.get("message") or response.reason).split()))[:300]
    return ConnectorError(
        system=system,
        error_class=rule.error_class,
        code=code or f"http_{status}",
        field=str(error["param"]) if error.get("param") else None,
        retry_after=retry_after,
        message=f"Ledgerly {operation} failed: {code or 'HTTP'} (HTTP {status}): {detail} — "
        f"{rule.fix}",
    )


# --- the client --------------------------------------------------------------------


def key_fingerprint(api_key: str) -> str:
    """Which API key a stored session belongs to, without storing the key: a session
    opened with a replaced (or revoked) key must not outlive the change of key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


class LedgerlyClient:
    """One Ledgerly account for a run (or a process); thread-safe."""

    def __init__(
        self,
        settings: LedgerlySettings,
        *,
        connection: str,
        credentials: CredentialStore | None,
        sleep: Callable[[float], None] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if settings.api_key is None or not settings.api_key.get_secret_value():
            raise ConnectorError(
                system=connection,
                error_class=_A,
                message=f"{connection}: api_key is not set; configure a Ledgerly API key",
            )
        self.connection = connection
        self._key = settings.api_key
        self._base = settings.base_url.rstrip("/")
        self._credentials = credentials
        self._credential = f"{CREDENTIAL_PREFIX}{connection}"
        self._scrub = SecretScrubber([self._key.get_secret_value()], CREDENTIAL_SHAPES)
        self._sleep = sleep or time.sleep
        self._now = now or (lambda: datetime.now(UTC))
        ca = str(settings.ca_bundle) if settings.ca_bundle else None
        self._http = VendorSession(timeout_s=settings.timeout_s, ca_bundle=ca)
        self._retry = RetryPolicy(settings.retry_attempts, backoff_s=0.5, backoff_max_s=20)
        self._lock = threading.Lock()
        self._token: tuple[str, datetime] | None = None

    def __repr__(self) -> str:
        return f"LedgerlyClient(connection={self.connection!r}, base_url={self._base!r})"

    def get(self, operation: str, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self._call(operation, "GET", path, params=params)

    def post(
        self, operation: str, path: str, body: Mapping[str, Any], *, idempotency_key: str
    ) -> Any:
        """POST with the idempotency key every attempt repeats (STYLE.md 4)."""
        return self._call(operation, "POST", path, body=body, key=idempotency_key)

    def pages(self, operation: str, path: str, params: Mapping[str, str]) -> Iterator[Any]:
        """Every item of a list endpoint, following ``next_after`` page by page."""
        query = dict(params)
        while True:
            page = self.get(operation, path, query)
            yield from page["data"]
            if not page.get("next_after"):
                return
            query["after"] = str(page["next_after"])

    # --- machinery -----------------------------------------------------------------

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> Any:
        headers = {"Idempotency-Key": key} if key else {}
        request = _Request(operation, method, path, params, body, headers)
        return call_with_retries(self._retry, partial(self._attempt, request), sleep=self._sleep)

    def _attempt(self, request: _Request) -> Any:
        response = self._send(request, self._session())
        if response.status_code == 401 and _code(response) == "session_expired":
            response = self._send(request, self._session(renew=True))
        if response.status_code >= 400:
            raise classify(
                response, system=self.connection, operation=request.operation, scrub=self._scrub
            )
        return response.json()

    def _send(self, request: _Request, token: str) -> requests.Response:
        try:
            return self._http.request(
                request.method,
                f"{self._base}{request.path}",
                params=request.params,
                json=request.body,
                headers={**request.headers, "Authorization": f"Bearer {token}"},
            )
        except requests.RequestException as exc:
            raise ConnectorError(
                system=self.connection,
                error_class=NETWORK.error_class,
                code="network",
                message=f"Ledgerly {request.operation} failed: {type(exc).__name__} — "
                f"{NETWORK.fix}",
            ) from None  # the exception's text may carry the URL and headers

    def _session(self, *, renew: bool = False) -> str:
        """A live session token: this process's, the ledger's, or a new one."""
        with self._lock:
            now = self._now()
            if not renew and self._token and self._token[1] - SESSION_MARGIN > now:
                return self._token[0]
            stored = None if self._credentials is None else self._credentials.load(self._credential)
            version = stored[1] if stored else None
            fingerprint = key_fingerprint(self._key.get_secret_value())
            if stored and not renew and stored[0].get("key") == fingerprint:
                expires = datetime.fromisoformat(str(stored[0]["expires_at"]))
                if expires - SESSION_MARGIN > now:
                    self._token = (str(stored[0]["token"]), expires)
                    return self._token[0]
            opened = self._open_session()
            data = {
                "token": opened["token"],
                "expires_at": opened["expires_at"],
                "key_expires_at": opened.get("key_expires_at"),
                "key": fingerprint,
            }
            if self._credentials is not None:
                # Lost the compare-and-swap: another process saved its own session at
                # the same moment; ours is just as valid, so use it and move on.
                self._credentials.save(self._credential, data, version)
            self._token = (str(data["token"]), datetime.fromisoformat(str(data["expires_at"])))
            return self._token[0]

    def _open_session(self) -> Any:
        opening = _Request("open a session", "POST", "/v1/sessions", None, {}, {})
        response = self._send(opening, self._key.get_secret_value())
        if response.status_code >= 400:
            raise classify(
                response, system=self.connection, operation="open a session", scrub=self._scrub
            )
        return response.json()


@dataclass(frozen=True)
class _Request:
    """One request as every attempt repeats it (same idempotency key included)."""

    operation: str
    method: str
    path: str
    params: Mapping[str, str] | None
    body: Mapping[str, Any] | None
    headers: Mapping[str, str]


def _code(response: requests.Response) -> str | None:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return None
    return str(error.get("code")) if isinstance(error, dict) and error.get("code") else None
