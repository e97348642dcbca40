"""Transport to the Salesforce REST API: session renewal, retries, quota, the error table.

Everything that talks to Salesforce goes through `SalesforceClient`; the rest of the
package never handles a simple-salesforce exception, and the engine only ever sees
`ConnectorError`s classified by `ERROR_CODES` / `HTTP_STATUS` / `EXCEPTIONS` below.

- Auth: a token from `auth.OAuthLogin`, then simple-salesforce in "direct" mode
  (instance URL + session id). Direct mode never renews an expired session, so on 401
  INVALID_SESSION_ID the client fetches a new token and repeats that call exactly once.
  With a credential store (`use_credential_store`) the session is kept in the ledger
  and the next run starts with it (`auth.StoredSession`): no login while it is accepted.
- Retries: transient and rate-limited errors are retried in-call by the core's one loop
  (`billsync.core.retrying`: jittered exponential backoff up to 30 s,
  ``salesforce.retry_attempts`` attempts, injectable sleep). An expired query locator
  and the quota floor are `RetryLater`: the next run or the queue, not this call.
- Quota: after every response the ``Sforce-Limit-Info`` header (``api-usage=U/M``) is
  read; once the remaining daily allocation is below ``salesforce.quota_floor_percent``
  the client makes no more calls and raises QUOTA_FLOOR. The allocation is a rolling
  24 hours, so a stop is not for ever: every ``salesforce.quota_recheck_s`` the next
  call first re-reads it with one limits call (``GET …/limits``, whose answer carries
  the header and ``DailyApiRequests``) and goes on once it is back above the floor —
  what a long-lived client (the inbox worker of `billsync serve`) needs; a run is
  usually over before a recheck is due.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from billsync.connectors.salesforce.auth import (
    AccessToken,
    OAuthLogin,
    StoredSession,
    TokenEndpointError,
    check_settings,
)
from billsync.connectors.salesforce.settings import CREDENTIAL_SHAPES, SalesforceSettings
from billsync.core.http import VendorSession
from billsync.core.logs import SecretScrubber, get_logger
from billsync.core.protocols import ConnectorError, CredentialStore, ErrorClass, ErrorRule
from billsync.core.retrying import RetryLater, RetryPolicy, call_with_retries

__all__ = [
    "ERROR_CODES",
    "EXCEPTIONS",
    "HTTP_STATUS",
    "SYSTEM",
    "Quota",
    "Rule",
    "SalesforceClient",
    "classify",
    "rule_for",
]

SYSTEM = "salesforce"
T = TypeVar("T")
log = get_logger("billsync.salesforce")


# --- the error table ---------------------------------------------------------------


Rule = ErrorRule  # a row of this connector's error table


_T, _R, _A = ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED, ErrorClass.AUTH
_C, _I, _N = ErrorClass.CONFLICT, ErrorClass.INVALID_DATA, ErrorClass.NOT_FOUND
_FIELD_FIX = "create the field (with edit access for the integration user) or change the mapping"
_TRIGGER_FIX = "an Apex trigger or Flow on Opportunity failed; fix the automation or the data"

ERROR_CODES: dict[str, Rule] = {
    # REST errorCode / collection statusCode / OAuth error -> what to do next.
    "SERVER_UNAVAILABLE": Rule(_T, "Salesforce is briefly unavailable; billsync retries"),
    # Lock contention clears in seconds, and a write-back sets absolute values, so the
    # same request repeated is correct: transient, not conflict (which means "refetch").
    "UNABLE_TO_LOCK_ROW": Rule(_T, "another process held the record's lock; billsync retries"),
    "INVALID_QUERY_LOCATOR": Rule(_T, "the query cursor expired; the next run resumes"),
    "QUERY_TIMEOUT": Rule(_T, "narrow the query (record_types / extra_where) if this repeats"),
    "REQUEST_RUNNING_TOO_LONG": Rule(_T, "narrow the query if this repeats"),
    "ALL_OR_NONE_OPERATION_ROLLED_BACK": Rule(_T, "rolled back with another record; retried"),
    "REQUEST_LIMIT_EXCEEDED": Rule(
        _R, "an org API limit was hit; wait for it to recover or raise the org's allocation"
    ),
    "INVALID_SESSION_ID": Rule(
        _A,
        "a freshly issued session was refused; check the connected app's session policy "
        "and that the integration user is active",
    ),
    "INSUFFICIENT_ACCESS": Rule(
        _A, "grant the integration user API access and read/edit on Opportunity"
    ),
    "INSUFFICIENT_ACCESS_OR_READONLY": Rule(
        _A, "give the integration user edit access to this opportunity (sharing/permission set)"
    ),
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": Rule(
        _A, "give the integration user access to the related record"
    ),
    "API_DISABLED_FOR_ORG": Rule(_A, "enable API access for the org (edition) and the user"),
    "API_CURRENTLY_DISABLED": Rule(_A, "enable 'API Enabled' on the integration user's profile"),
    "invalid_grant": Rule(
        _A,
        "check salesforce.username, that the connected app is pre-approved for that user, "
        "that its certificate matches salesforce.private_key_file, and salesforce.login_url "
        "(https://test.salesforce.com for sandboxes)",
    ),
    "invalid_client": Rule(_A, "check salesforce.client_id and salesforce.client_secret"),
    "invalid_client_id": Rule(_A, "salesforce.client_id is not a known consumer key"),
    "unauthorized_client": Rule(_A, "enable this OAuth flow for the connected app"),
    "unsupported_grant_type": Rule(_A, "enable this OAuth flow for the connected app"),
    "inactive_user": Rule(_A, "reactivate the integration user or configure another"),
    "inactive_org": Rule(_A, "the org is inactive or locked; contact its administrator"),
    "MALFORMED_QUERY": Rule(
        _I, "fix salesforce.extra_where / record_types or the source paths in the mapping"
    ),
    "INVALID_FIELD": Rule(_I, _FIELD_FIX),
    "INVALID_TYPE": Rule(_I, "the object does not exist or the user cannot see it"),
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": Rule(
        _I, "a validation rule rejected the values; exempt the integration user or fix the data"
    ),
    "STRING_TOO_LONG": Rule(_I, "lengthen the field or shorten the value in the mapping"),
    "INVALID_TYPE_ON_FIELD_IN_RECORD": Rule(
        _I, "the field's type does not take this value; change the field or the mapping"
    ),
    "INVALID_FIELD_FOR_INSERT_UPDATE": Rule(
        _I, "the field is read-only for the integration user; make it editable or unmap it"
    ),
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": Rule(
        _I, "add the value to the picklist (e.g. every Billing Status label) or unrestrict it"
    ),
    "REQUIRED_FIELD_MISSING": Rule(_I, "a required field is empty; fill it or relax the rule"),
    "FIELD_INTEGRITY_EXCEPTION": Rule(_I, "the value breaks the field's integrity rules"),
    "NUMBER_OUTSIDE_VALID_RANGE": Rule(_I, "widen the number field's precision"),
    "DUPLICATE_VALUE": Rule(_I, "a unique field already holds this value on another record"),
    "MALFORMED_ID": Rule(_I, "the record id is malformed"),
    "JSON_PARSER_ERROR": Rule(_I, "Salesforce could not parse billsync's request; a bug"),
    "EXCEEDED_ID_LIMIT": Rule(_I, "lower salesforce.writeback_batch_size (at most 200)"),
    "CANNOT_EXECUTE_FLOW_TRIGGER": Rule(_I, _TRIGGER_FIX),
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY": Rule(_I, _TRIGGER_FIX),
    "NOT_FOUND": Rule(_N, "the record or resource does not exist"),
    "ENTITY_IS_DELETED": Rule(_N, "the opportunity was deleted; restore it or resolve the item"),
    # On an update this means the record id itself is unknown or invisible to the user
    # (deleted, merged, or shared away): the deal is gone for us, not our data wrong.
    "INVALID_CROSS_REFERENCE_KEY": Rule(
        _N, "the record does not exist or the integration user cannot see it"
    ),
    "INVALID_ID_FIELD": Rule(_N, "the record id does not exist"),
    "ENTITY_IS_LOCKED": Rule(
        _C, "the opportunity is locked (e.g. by an approval process); unlock it, then retry"
    ),
}

HTTP_STATUS: dict[int, Rule] = {
    # Fallback when the body names no known errorCode.
    400: Rule(_I, "Salesforce could not accept the request"),
    401: Rule(_A, "the session was refused; check the connected app and integration user"),
    403: Rule(_A, "the request was refused; check the integration user's permissions"),
    404: Rule(_N, "check salesforce.instance_url and salesforce.api_version"),
    409: Rule(_C, "the record changed concurrently; billsync retries later"),
    429: Rule(_R, "too many requests; billsync backs off"),
}
_SERVER_ERROR = Rule(_T, "Salesforce had a server error; billsync retries")

EXCEPTIONS: tuple[tuple[type[BaseException], Rule], ...] = (
    # First match wins: SSLError is a ConnectionError, but retrying cannot fix it.
    (requests.exceptions.SSLError, Rule(_A, "TLS failed: check salesforce.ca_bundle and URLs")),
    (
        requests.exceptions.InvalidURL,
        Rule(_A, "check salesforce.instance_url and salesforce.login_url"),
    ),
    (requests.exceptions.MissingSchema, Rule(_A, "URLs in salesforce.* need https://")),
    (requests.exceptions.Timeout, Rule(_T, "Salesforce did not answer in time; retried")),
    (requests.exceptions.ConnectionError, Rule(_T, "the connection failed; retried")),
    (requests.exceptions.ChunkedEncodingError, Rule(_T, "the response was cut off; retried")),
    (requests.exceptions.ContentDecodingError, Rule(_T, "the response was garbled; retried")),
    (requests.exceptions.JSONDecodeError, Rule(_T, "the response was not JSON; retried")),
    (requests.exceptions.RequestException, Rule(_T, "the HTTP request failed; retried")),
)

# Rows whose errors are retried later, never by repeating the call now: an expired query
# locator cannot come back (the pull restarts from its cursor in the next run).
LATER = frozenset({"INVALID_QUERY_LOCATOR"})

_NO_SUCH_COLUMN = re.compile(r"No such column '([A-Za-z0-9_.]+)'")
_SCRUB = SecretScrubber(patterns=CREDENTIAL_SHAPES)


def rule_for(code: str | None, status: int | None = None) -> Rule:
    """The rule for a Salesforce error code, else for the HTTP status."""
    if code and code in ERROR_CODES:
        return ERROR_CODES[code]
    if status is not None and status >= 500:
        return _SERVER_ERROR
    if status is not None and status in HTTP_STATUS:
        return HTTP_STATUS[status]
    return Rule(_I, "see the Salesforce message") if code else _SERVER_ERROR


def salesforce_detail(message: object) -> str:
    """Salesforce's message, shortened: query errors echo the whole SOQL above the reason."""
    text = str(message or "")
    if "ERROR at Row:" in text:
        text = text.split("ERROR at Row:", 1)[1].partition("\n")[2] or text
    return _SCRUB.scrub(" ".join(text.split()))[:400]


def classify(exc: BaseException, *, operation: str) -> ConnectorError | None:
    """A vendor or transport exception as a ConnectorError; None if it is not one of ours."""
    if isinstance(exc, SalesforceError):
        content = exc.content[0] if isinstance(exc.content, list) and exc.content else None
        first: dict[str, Any] = content if isinstance(content, dict) else {}
        code = str(first.get("errorCode") or "") or None
        detail = salesforce_detail(first.get("message") or "")
        fields = first.get("fields") or []
        column = _NO_SUCH_COLUMN.search(str(first.get("message") or ""))
        field = column.group(1) if column else (",".join(map(str, fields)) or None)
        return _error(operation, rule_for(code, exc.status), code, exc.status, detail, field)
    if isinstance(exc, TokenEndpointError):
        detail = salesforce_detail(exc.description)
        rule = rule_for(exc.error, exc.status)
        return _error(f"login ({operation})", rule, exc.error, exc.status, detail, None)
    for kind, rule in EXCEPTIONS:
        if isinstance(exc, kind):
            # The exception text may carry the URL with the query; name only its type.
            name = type(exc).__name__
            return _error(operation, rule, name.upper(), None, name, None)
    return None


def _error(
    operation: str,
    rule: Rule,
    code: str | None,
    status: int | None,
    detail: str,
    field: str | None,
) -> ConnectorError:
    where = f"{code}{f' (HTTP {status})' if status else ''}" if code else f"HTTP {status}"
    kind = RetryLater if code in LATER else ConnectorError
    return kind(
        system=SYSTEM,
        error_class=rule.error_class,
        code=code,
        field=field,
        message=f"Salesforce {operation} failed: {where}: {detail or 'no message'} — {rule.fix}",
    )


# --- the client --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quota:
    """The org's daily API allocation as last reported, and whether this run stopped."""

    used: int | None
    max: int | None
    stopped: bool
    floor_percent: Decimal

    @property
    def remaining(self) -> int | None:
        return None if self.used is None or self.max is None else max(0, self.max - self.used)


class SalesforceClient:
    """One authenticated connection to an org, for one run (or one process)."""

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        session: VendorSession | None = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        check_settings(settings)  # ConfigError naming the keys to fix, before any call
        if session is not None and not isinstance(session, VendorSession):
            raise TypeError("pass a VendorSession: a plain Session decodes money as float")
        ca_bundle = str(settings.ca_bundle) if settings.ca_bundle else None
        self._settings = settings
        self._session = session or VendorSession(timeout_s=settings.timeout_s, ca_bundle=ca_bundle)
        self._login = OAuthLogin(settings, self._session, now=now)
        self._now = now
        self._stored: StoredSession | None = None
        self._store_tried = False
        self._sleep = sleep or time.sleep
        # Salesforce sends no Retry-After: the cap is the backoff's own.
        self._retry = RetryPolicy(
            settings.retry_attempts, backoff_s=1, backoff_max_s=30, max_wait_s=30
        )
        self._sf: Salesforce | None = None
        self._used: int | None = None
        self._max: int | None = None
        self._stopped = False
        self._recheck_at: datetime | None = None  # when a stopped client may look again
        self.logins = 0  # token requests this client made
        self.reused_session = False  # started with a session stored by an earlier run

    def __repr__(self) -> str:
        return f"SalesforceClient(auth={self._settings.auth!r}, quota={self.quota!r})"

    def use_credential_store(self, store: CredentialStore) -> None:
        """Keep the session in ``store`` and start from the one stored there (before the
        first call). Nothing is stored when ``salesforce.session_reuse_s`` is 0."""
        reuse = timedelta(seconds=self._settings.session_reuse_s)
        if reuse:
            name = self._login.credential_name
            self._stored = StoredSession(store, name, reuse=reuse, now=self._now)

    def close(self) -> None:
        """Close the HTTP connections (an injected session is closed too)."""
        self._session.close()

    @property
    def quota(self) -> Quota:
        return Quota(self._used, self._max, self._stopped, self._settings.quota_floor_percent)

    def query(self, soql: str, *, batch_size: int) -> dict[str, Any]:
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"}
        result: dict[str, Any] = self._call("query", lambda sf: sf.query(soql, headers=headers))
        return result

    def query_more(self, next_records_url: str, *, batch_size: int) -> dict[str, Any]:
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"}
        result: dict[str, Any] = self._call(
            "query (next page)",
            lambda sf: sf.query_more(next_records_url, identifier_is_url=True, headers=headers),
        )
        return result

    def describe(self, sobject: str) -> dict[str, Any]:
        """The object's describe (fields, relationships), e.g. for `mappings check`."""
        result: dict[str, Any] = self._call("describe", lambda sf: getattr(sf, sobject).describe())
        return result

    def patch_collection(self, body: bytes) -> Any:
        """PATCH composite/sobjects with a body serialised by the caller (exact numbers)."""
        return self._call(
            "write-back", lambda sf: sf.restful("composite/sobjects", method="PATCH", data=body)
        )

    # --- machinery -----------------------------------------------------------------

    def _call(self, operation: str, request: Callable[[Salesforce], T]) -> T:
        attempt = partial(self._attempt, operation, request)
        return call_with_retries(self._retry, attempt, sleep=self._sleep)

    def _attempt(self, operation: str, request: Callable[[Salesforce], T]) -> T:
        if self._stopped and not self._recovered():
            raise self._floor_error()
        try:
            try:
                result = request(self._connected())
            except SalesforceExpiredSession:
                # Direct mode does not renew: renew once and repeat the call once. A
                # second 401 goes to the table as an auth error.
                log.info("salesforce.session_renewal", operation=operation)
                self._renew()
                result = request(self._connected())
        except (SalesforceError, TokenEndpointError, requests.RequestException) as exc:
            error = classify(exc, operation=operation)
            assert error is not None
            if error.code == "REQUEST_LIMIT_EXCEEDED" and "TotalRequests" in error.message:
                self._stop()  # the daily allocation is spent: no more calls for now
            self._track_quota()  # failed calls count against the allocation too
            if self._stopped and not isinstance(error, RetryLater):
                error = RetryLater.of(error)  # no more calls this run: not even a retry
            raise error from None
        self._track_quota()
        return result

    def _connected(self) -> Salesforce:
        if self._sf is None:
            # The stored session is tried once per client, at its first call: once
            # refused (expired, revoked), `_attempt` logs in and repeats that call.
            stored = self._stored.load() if self._stored and not self._store_tried else None
            self._store_tried = True
            if stored is None:
                self._renew()
            else:
                self.reused_session = True
                self._open(stored)
        assert self._sf is not None
        return self._sf

    def _renew(self) -> None:
        self._sf = None
        token = self._login.fetch(timeout=self._settings.timeout_s)
        self.logins += 1
        if self._stored is not None:
            self._stored.save(token)
        self._open(token)

    def _open(self, token: AccessToken) -> None:
        self._sf = Salesforce(
            instance_url=token.instance_url,
            session_id=token.reveal(),
            version=self._settings.api_version,
            session=self._session,
            parse_float=Decimal,
            object_pairs_hook=dict,
        )

    def _track_quota(self) -> None:
        info = self._session.last_headers.get("Sforce-Limit-Info")
        usage = Salesforce.parse_api_usage(info).get("api-usage") if info else None
        if usage is None:
            return
        self._record_usage(usage.used, usage.total)

    def _record_usage(self, used: int, total: int) -> None:
        self._used, self._max = used, total
        floor = self._settings.quota_floor_percent
        if not self._stopped and (total - used) * 100 < floor * total:
            self._stop()
            log.warning("salesforce.quota_floor", used=used, max=total, floor_percent=str(floor))

    def _clock(self) -> datetime:
        return self._now() if self._now is not None else datetime.now(UTC)

    def _stop(self) -> None:
        self._stopped = True
        self._recheck_at = self._clock() + timedelta(seconds=self._settings.quota_recheck_s)

    def _recovered(self) -> bool:
        """Stopped: when a recheck is due, re-read the allocation (one limits call) and
        resume if it is back above the floor. Any failure keeps the stop until the next
        recheck."""
        if self._recheck_at is not None and self._clock() < self._recheck_at:
            return False
        self._stopped = False
        try:
            try:
                limits = self._connected().limits()
            except SalesforceExpiredSession:  # a long stop outlives the session
                self._renew()
                limits = self._connected().limits()
            daily = limits.get("DailyApiRequests") or {}
            total, remaining = int(daily["Max"]), int(daily["Remaining"])
        except Exception as exc:  # any failure: stay stopped, look again later
            self._stop()
            log.warning("salesforce.quota_recheck_failed", error=type(exc).__name__)
            return False
        self._record_usage(total - remaining, total)  # stops again if still below
        if self._stopped:
            return False
        log.info("salesforce.quota_recovered", used=self._used, max=self._max)
        return True

    def _floor_error(self) -> RetryLater:
        quota = self.quota
        return RetryLater(
            system=SYSTEM,
            error_class=ErrorClass.RATE_LIMITED,
            code="QUOTA_FLOOR",
            message=(
                f"Salesforce daily API allocation nearly spent: {quota.used} of {quota.max} "
                f"calls used, {quota.remaining} left, below the floor of "
                f"{quota.floor_percent}% (salesforce.quota_floor_percent). billsync makes no "
                "more Salesforce calls in this run; the rest waits for the next run. Raise "
                "the org's allocation or lower the floor to go on sooner."
            ),
        )
