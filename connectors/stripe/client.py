"""Transport to the Stripe API: the SDK client, our retries, a rate limiter, the error table.

Everything in this package that talks to Stripe goes through `StripeApi.call` (one
request) or `StripeApi.pages` / `StripeApi.search_pages` (a list, page by page); nothing
else handles a stripe-python exception, and the engine only sees `ConnectorError`s
classified by `EXCEPTIONS` below.

Vendor quirks this module exists for (api-facts §3.9-3.10):
- `StripeClient` does no network retries by default, and stripe-python never retries a
  plain 429. We retry transient and rate-limited errors ourselves (the core's one loop,
  `billsync.core.retrying`: backoff up to 20 s, Retry-After honoured up to 60 s) and
  send the SAME idempotency key each time, so a retried POST replays instead of
  repeating. The SDK's own retries stay at ``stripe.max_network_retries`` (default 0)
  so attempts do not multiply.
- A saved error is replayed for the key's 24 h (500s included): an error answered with
  ``Idempotent-Replayed: true`` or ``Stripe-Should-Retry: false`` is `RetryLater`: the
  queue retries it (after a lookup), the call does not.
- stripe-python's ``auto_paging_iter`` fetches later pages behind our back (no retries,
  no rate limit, raw SDK errors), so lists are paged here, each page through `call`.
- Test keys may make 25 requests/s and live keys 100/s; the limiter stays under that.
- The SDK brings its own session (one per thread); a configured ``ca_bundle`` needs ours
  (`billsync.core.http.VendorSession`): stripe-python passes ``verify=<its own bundle>``
  on every request, which beats a plain session's ``verify``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import requests
import stripe

from billsync.connectors.stripe.settings import CREDENTIAL_SHAPES, StripeSettings
from billsync.core.http import VendorSession
from billsync.core.logs import SecretScrubber
from billsync.core.protocols import ConnectorError, ErrorClass, ErrorRule
from billsync.core.ratelimit import RateLimiter
from billsync.core.retrying import RetryLater, RetryPolicy, call_with_retries

__all__ = ["EXCEPTIONS", "SYSTEM", "Reply", "Rule", "StripeApi", "classify"]

SYSTEM = "stripe"

_T, _R, _A = ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED, ErrorClass.AUTH
_C, _I, _N = ErrorClass.CONFLICT, ErrorClass.INVALID_DATA, ErrorClass.NOT_FOUND


Rule = ErrorRule  # a row of this connector's error table


# --- the error table ---------------------------------------------------------------

# First match wins (IdempotencyError and CardError are not InvalidRequestErrors, but
# order them first anyway so the table reads from specific to general).
EXCEPTIONS: tuple[tuple[type[stripe.StripeError], Rule], ...] = (
    # The same key came back with different parameters: repeating cannot succeed, and
    # after 24 h the key expires and a repeat would create a SECOND object. Not
    # `conflict` (refetch-and-retry would resend the same key); `invalid_data` parks the
    # work until the deal changes (new revision, new key) while callers that can look
    # the object up (the invoice create step) do so first.
    (
        stripe.IdempotencyError,
        Rule(
            _I,
            "an earlier attempt used this idempotency key with other values; billsync "
            "looks the invoice up instead of creating another. If none is found, edit the "
            "deal (a new revision gets a new key) or retry after the key expires (24 h)",
        ),
    ),
    (
        stripe.CardError,
        Rule(_I, "the customer's payment method was declined; the invoice stays open"),
    ),
    (stripe.RateLimitError, Rule(_R, "too many requests to Stripe; billsync backs off")),
    (
        stripe.AuthenticationError,
        Rule(_A, "Stripe refused the API key: set stripe.api_key to a valid sk_/rk_ key"),
    ),
    (
        stripe.PermissionError,
        Rule(
            _A,
            "the restricted key lacks a permission: grant write on Customers and Invoices, "
            "read on Products, Prices, Events, Charges, Disputes and Credit notes",
        ),
    ),
    (stripe.InvalidRequestError, Rule(_I, "Stripe refused the values sent; see its message")),
    (stripe.APIConnectionError, Rule(_T, "could not reach Stripe (network or timeout); retried")),
    (stripe.APIError, Rule(_T, "Stripe had a server error; retried")),
    (stripe.StripeError, Rule(_T, "unexpected Stripe error; retried")),
)
# Finer rules for InvalidRequestError by Stripe error code / HTTP status.
_BY_CODE: dict[str, Rule] = {
    "resource_missing": Rule(_N, "the object does not exist in this Stripe account"),
    "rate_limit": Rule(_R, "too many requests to Stripe; billsync backs off"),
    "lock_timeout": Rule(_T, "the object was locked by a concurrent request; retried"),
}
_BY_STATUS: dict[int, Rule] = {
    # 409: a concurrent request is still running under the same key; once it ends the
    # key replays its result, so repeating the same request is right.
    409: Rule(_T, "a concurrent request with the same key is in progress; retried"),
    404: Rule(_N, "the object does not exist in this Stripe account"),
}


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def classify(exc: stripe.StripeError, *, operation: str, scrub: SecretScrubber) -> ConnectorError:
    """A stripe-python exception as a ConnectorError; the message never carries the key."""
    rule = next(r for kind, r in EXCEPTIONS if isinstance(exc, kind))
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    nested = body.get("error")
    detail_body: dict[str, Any] = nested if isinstance(nested, dict) else {}
    code = exc.code or detail_body.get("code") or None
    status = exc.http_status
    if isinstance(exc, stripe.InvalidRequestError) and not isinstance(exc, stripe.IdempotencyError):
        rule = _BY_CODE.get(code or "") or _BY_STATUS.get(status or 0) or rule
    elif isinstance(exc, stripe.APIError) and status in _BY_STATUS:
        rule = _BY_STATUS[status]  # 409 arrives as a plain APIError
    if isinstance(exc, stripe.IdempotencyError):
        code = "idempotency_error"
    headers = exc.headers
    replayed = _header(headers, "Idempotent-Replayed") == "true"
    no_retry = _header(headers, "Stripe-Should-Retry") == "false"
    kind = ConnectorError
    if rule.error_class.retryable and (replayed or no_retry):
        # Retryable later (after a lookup), never by repeating this request now.
        code = "replayed_error" if replayed else "should_not_retry"
        kind = RetryLater
    retry_after = None
    if rule.error_class is ErrorClass.RATE_LIMITED:
        value = _header(headers, "Retry-After")
        retry_after = timedelta(seconds=int(value)) if value and value.isdigit() else None
    detail = scrub.scrub(" ".join(str(exc.user_message or type(exc).__name__).split()))[:400]
    where = f"{code or type(exc).__name__}{f' (HTTP {status})' if status else ''}"
    request_id = f" [request {exc.request_id}]" if exc.request_id else ""
    param = getattr(exc, "param", None) or detail_body.get("param")
    return kind(
        system=SYSTEM,
        error_class=rule.error_class,
        code=code,
        field=str(param) if param else None,
        retry_after=retry_after,
        message=f"Stripe {operation} failed: {where}: {detail}{request_id} — {rule.fix}",
    )


# --- the client --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer: the object as plain data, and whether Stripe replayed a saved answer
    (``Idempotent-Replayed: true``: an earlier attempt with this key got there first)."""

    data: dict[str, Any]
    replayed: bool


# Stripe counts requests per rolling second. The window is a little longer than a second:
# requests arrive later than they leave, by varying amounts, and two sent exactly a
# second apart may land 0.99 s apart.
WINDOW_S = 1.05


class StripeApi:
    """One configured Stripe client for a run (or a process); thread-safe."""

    def __init__(
        self,
        settings: StripeSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] | None = None,
        connection: str = "stripe",
    ) -> None:
        if settings.api_key is None or not settings.api_key.get_secret_value():
            raise ConnectorError(
                system=SYSTEM,
                error_class=ErrorClass.AUTH,
                message="stripe.api_key is not set; configure a secret or restricted key",
            )
        key = settings.api_key.get_secret_value()
        if not key.startswith(("sk_", "rk_")):
            raise ConnectorError(
                system=SYSTEM,
                error_class=ErrorClass.AUTH,
                message="stripe.api_key must be a secret (sk_…) or restricted (rk_…) key; "
                "a publishable key (pk_…) cannot create invoices",
            )
        self.settings = settings
        self.api_version = settings.api_version or stripe.api_version
        self.livemode = "_live_" in key
        self._scrub = SecretScrubber([key], CREDENTIAL_SHAPES)
        self._sleep = sleep or time.sleep
        if session is None:
            # Our own session, never the module-global ``stripe.ca_bundle_path``: that
            # would change every Stripe client in the process. It names the connection,
            # so two Stripe accounts' calls are counted apart (same host).
            https = (settings.base_url or "https").startswith("https")
            bundle = str(settings.ca_bundle) if settings.ca_bundle and https else None
            session = VendorSession(
                timeout_s=settings.timeout_s, ca_bundle=bundle, connection=connection
            )
        http = stripe.RequestsClient(timeout=settings.timeout_s, session=session)
        self._sdk = stripe.StripeClient(
            key,
            stripe_version=self.api_version,
            base_addresses={"api": settings.base_url} if settings.base_url else None,
            max_network_retries=settings.max_network_retries,
            http_client=http,
        )
        rate = settings.rate_limit_per_s or (100 if self.livemode else 25)
        self._limiter = RateLimiter.per(
            rate, WINDOW_S, clock=monotonic or time.monotonic, sleep=self._sleep
        )
        self._retry = RetryPolicy(
            settings.retry_attempts, backoff_s=0.5, backoff_max_s=20, max_wait_s=60
        )

    def __repr__(self) -> str:
        return f"StripeApi(api_version={self.api_version!r}, livemode={self.livemode})"

    @property
    def v1(self) -> Any:
        """The SDK's v1 services. Typed loosely on purpose: params are built as plain
        dicts by `convert`, and every call goes through `call` anyway."""
        return self._sdk.v1

    def call(
        self,
        operation: str,
        request: Callable[[dict[str, Any]], Any],
        *,
        idempotency_key: str | None = None,
    ) -> Reply:
        """Run ``request(options)`` with retries; ``options`` carries the idempotency key,
        created once here and reused by every attempt."""
        options: dict[str, Any] = {"idempotency_key": idempotency_key} if idempotency_key else {}
        attempt = partial(self._attempt, operation, request, options)
        return call_with_retries(self._retry, attempt, sleep=self._sleep)

    def pages(
        self,
        operation: str,
        request: Callable[[dict[str, Any], dict[str, Any]], Any],
        params: Mapping[str, Any],
        *,
        backwards: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, 100 a page. Forwards: in the list's order
        (newest first). Backwards (``params`` has ``ending_before``): oldest first."""
        query: dict[str, Any] = {"limit": 100, **params}
        while True:
            page = self.call(operation, partial(request, query)).data
            data = list(page.get("data") or [])
            yield from (reversed(data) if backwards else data)
            if not page.get("has_more") or not data:
                return
            if backwards:
                query = {**query, "ending_before": data[0]["id"]}
            else:
                query = {**query, "starting_after": data[-1]["id"]}

    def search_pages(
        self,
        operation: str,
        request: Callable[[dict[str, Any], dict[str, Any]], Any],
        query_text: str,
    ) -> Iterator[dict[str, Any]]:
        """Every result of a search endpoint (``page``/``next_page`` pagination)."""
        query: dict[str, Any] = {"query": query_text, "limit": 100}
        while True:
            page = self.call(operation, partial(request, query)).data
            yield from page.get("data") or []
            token = page.get("next_page")
            if not page.get("has_more") or not token:
                return
            query = {**query, "page": token}

    # --- machinery -----------------------------------------------------------------

    def _attempt(
        self, operation: str, request: Callable[[dict[str, Any]], Any], options: dict[str, Any]
    ) -> Reply:
        self._limiter.acquire()
        try:
            obj = request(dict(options))
        except stripe.StripeError as exc:
            raise classify(exc, operation=operation, scrub=self._scrub) from None
        response = getattr(obj, "last_response", None)
        replayed = _header(getattr(response, "headers", None), "Idempotent-Replayed") == "true"
        return Reply(obj.to_dict(recursive=True), replayed)
