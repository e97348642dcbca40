"""The error table: every QuickBooks / Intuit failure mapped to what to do next.

One small table per kind of failure — ``FAULT_CODES`` (Fault.Error[].code, in HTTP
errors, 200-with-Fault bodies and batch items), ``HTTP_STATUS`` (when the body names no
known code, e.g. the non-JSON throttle page), ``OAUTH_ERRORS`` (the token endpoint)
and ``EXCEPTIONS`` (no answer at all) — each rule an `ErrorClass` (DESIGN.md) and a fix
an operator can act on. Messages carry QuickBooks' own Message/Detail (scrubbed, cut
to 300 characters) but never tokens or request bodies.

Vendor quirks: the throttle page is XML even when JSON was asked for (python-quickbooks
then raises QuickbooksException 10000 "Error reading json response" without the
status: the session records the status and the 3001 marker is looked for in the text);
a JSON 3001 fault lands in python-quickbooks' ValidationException range; 5000–9999
(5010, 6240) are plain QuickbooksExceptions; only the first error is ever reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import requests
from quickbooks.exceptions import QuickbooksException

from billsync.connectors.quickbooks.settings import CREDENTIAL_SHAPES
from billsync.core.logs import SecretScrubber
from billsync.core.protocols import ConnectorError, ErrorClass, ErrorRule

__all__ = [
    "EXCEPTIONS",
    "FAULT_CODES",
    "HTTP_STATUS",
    "OAUTH_ERRORS",
    "RECONNECT",
    "SYSTEM",
    "Rule",
    "batch_fault",
    "exception_error",
    "fault_error",
    "oauth_error",
    "transport_error",
]

SYSTEM = "quickbooks"
_SCRUB = SecretScrubber(patterns=CREDENTIAL_SHAPES)


Rule = ErrorRule  # a row of this connector's error table


_T, _R, _A = ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED, ErrorClass.AUTH
_C, _I, _N = ErrorClass.CONFLICT, ErrorClass.INVALID_DATA, ErrorClass.NOT_FOUND
RECONNECT = "run `billsync auth quickbooks` to reconnect the company"


def auth_command(connection: str = SYSTEM) -> str:
    """The command that connects this connection's company: the plain section's, or
    ``--connection`` naming one of several QuickBooks companies."""
    if connection == SYSTEM:
        return "`billsync auth quickbooks`"
    return f"`billsync auth --connection {connection} quickbooks`"


FAULT_CODES: dict[int, Rule] = {
    # Fault.Error[].code -> what to do next (api-facts §2.8; only the first error is sent).
    100: Rule(_A, f"QuickBooks refused the app's permission; {RECONNECT} as a company admin"),
    120: Rule(_A, f"the connected user may not do this; {RECONNECT} as a company admin"),
    3100: Rule(
        _A, f"the token belongs to another company: check quickbooks.realm_id or {RECONNECT}"
    ),
    3200: Rule(_A, f"QuickBooks refused the access token; {RECONNECT}"),
    6190: Rule(_A, "the company's QuickBooks subscription has ended or is suspended; renew it"),
    500: Rule(_I, "QuickBooks does not support this operation (a billsync bug; report it)"),
    # 610 on a write: a reference (item, customer, term, tax code) is inactive or gone.
    # On a read by id it means the object itself is gone: see `fault_error(reading=True)`.
    610: Rule(
        _I, "reactivate the referenced item/customer/term in QuickBooks or change the mapping"
    ),
    2010: Rule(_I, "QuickBooks rejected a property billsync sent (a billsync bug; report it)"),
    2020: Rule(_I, "a required value is missing: fill it in the deal or the mapping"),
    2030: Rule(_I, "an id billsync sent does not exist in QuickBooks; check the mapping"),
    2040: Rule(_I, "remove the characters QuickBooks forbids (':' in names) from the value"),
    2050: Rule(_I, "shorten the value in the deal or the mapping (e.g. DocNumber ≤ 21 chars)"),
    2500: Rule(_I, "a referenced record is invalid; check the items, terms and tax codes"),
    3001: Rule(_R, "QuickBooks throttled billsync; it waits and retries"),
    4000: Rule(_I, "QuickBooks could not parse a query (a billsync bug; report it)"),
    4001: Rule(_I, "QuickBooks refused a query field (a billsync bug; report it)"),
    5010: Rule(_C, "the record changed in QuickBooks meanwhile; billsync refetches and retries"),
    6000: Rule(_I, "QuickBooks' business rules refused the invoice; fix the deal or the mapping"),
    6140: Rule(_I, "the DocNumber is already used by another invoice; change invoice.doc_number"),
    6210: Rule(_I, "the transaction date is in a closed books period; change it or reopen"),
    6240: Rule(_I, "the name is used by another customer, vendor or employee; rename one"),
    10000: Rule(_T, "QuickBooks had a server error; billsync retries"),
}

HTTP_STATUS: dict[int, Rule] = {
    # Fallback when the body names no known fault code.
    400: Rule(_I, "QuickBooks could not accept the request"),
    401: Rule(_A, f"QuickBooks refused the access token even after a refresh; {RECONNECT}"),
    403: Rule(_A, f"QuickBooks refused access to the company; {RECONNECT}"),
    404: Rule(_N, "the object or URL does not exist; check quickbooks.base_url / realm_id"),
    429: Rule(_R, "QuickBooks throttled billsync; it waits and retries"),
}
_SERVER_ERROR = Rule(_T, "QuickBooks had a server error; billsync retries")

OAUTH_ERRORS: dict[str, Rule] = {
    # Intuit token endpoint {"error": ...}.
    "invalid_grant": Rule(
        _A,
        "QuickBooks refused the stored refresh token (invalid_grant: revoked, expired or "
        f"superseded); {RECONNECT}",
    ),
    "invalid_client": Rule(
        _A, "check quickbooks.client_id and quickbooks.client_secret (Intuit portal, Keys)"
    ),
    "unauthorized_client": Rule(_A, "the Intuit app may not use this grant; check its settings"),
    "invalid_request": Rule(_A, "check quickbooks.redirect_uri against the Intuit app settings"),
    "unsupported_grant_type": Rule(_A, "the token endpoint refused the grant (a billsync bug)"),
}

EXCEPTIONS: tuple[tuple[type[BaseException], Rule], ...] = (
    # First match wins: SSLError is a ConnectionError, but retrying cannot fix it.
    (requests.exceptions.SSLError, Rule(_A, "TLS failed: check quickbooks.ca_bundle and URLs")),
    (requests.exceptions.InvalidURL, Rule(_A, "check quickbooks.base_url / discovery_url")),
    (requests.exceptions.MissingSchema, Rule(_A, "quickbooks URLs need http(s)://")),
    (requests.exceptions.Timeout, Rule(_T, "QuickBooks did not answer in time; retried")),
    (requests.exceptions.ConnectionError, Rule(_T, "the connection to QuickBooks failed")),
    (requests.exceptions.ChunkedEncodingError, Rule(_T, "the response was cut off; retried")),
    (requests.exceptions.RequestException, Rule(_T, "the HTTP request failed; retried")),
)

_THROTTLE_MARKERS = ("ThrottleExceeded", "errorCode=003001", 'code="3001"')


def _detail(*parts: object) -> str:
    text = ": ".join(str(p) for p in parts if p not in (None, ""))
    return _SCRUB.scrub(" ".join(text.split()))[:300]


def fault_error(
    code: object,
    message: str = "",
    detail: str = "",
    *,
    status: int | None = None,
    reading: bool = False,
    throttle_wait_s: int = 60,
) -> ConnectorError:
    """A QuickBooks Fault (HTTP error, 200-with-Fault or batch item) as a ConnectorError."""
    try:
        number: int | None = int(str(code))
    except ValueError:
        number = None
    if number == 610 and reading:
        rule = Rule(_N, "the object was deleted in QuickBooks or never existed")
    elif number is not None and number in FAULT_CODES:
        rule = FAULT_CODES[number]
    elif status is not None and status >= 500:
        rule = _SERVER_ERROR
    elif status is not None and status in HTTP_STATUS:
        rule = HTTP_STATUS[status]
    elif number is not None and 1 <= number <= 499:
        rule = Rule(_A, f"QuickBooks refused the request's authorization; {RECONNECT}")
    elif number is not None and number >= 10000:
        rule = _SERVER_ERROR
    else:
        rule = Rule(_I, "see QuickBooks' message; fix the deal or the mapping")
    retry_after = None
    if rule.error_class is _R:
        retry_after = timedelta(seconds=throttle_wait_s)
    return ConnectorError(
        system=SYSTEM,
        error_class=rule.error_class,
        message=f"{rule.fix} (QuickBooks {code}: {_detail(message, detail)})",
        code=str(code),
        retry_after=retry_after,
    )


def batch_fault(fault: Mapping[str, Any]) -> ConnectorError:
    """A ``Fault`` inside a batch answer (HTTP 200) as a ConnectorError."""
    errors = fault.get("Error") or [{}]
    error = errors[0] if isinstance(errors[0], Mapping) else {}
    return fault_error(error.get("code", ""), error.get("Message", ""), error.get("Detail", ""))


def exception_error(
    exc: QuickbooksException, status: int | None, reading: bool, throttle_wait_s: int
) -> ConnectorError:
    text = f"{exc.message} {exc.detail}"
    if status == 429 or any(marker in text for marker in _THROTTLE_MARKERS):
        return fault_error(3001, "ThrottleExceeded", throttle_wait_s=throttle_wait_s)
    if exc.error_code == 10000 and str(exc.message).startswith("Error re"):
        # python-quickbooks could not read the body ("Error reading json response") or
        # found no Fault in a non-200 answer: all we have is the HTTP status.
        return _status_error(status)
    return fault_error(
        exc.error_code, exc.message, exc.detail, status=status, reading=reading,
        throttle_wait_s=throttle_wait_s,
    )  # fmt: skip


def _status_error(status: int | None) -> ConnectorError:
    if status is not None and status in HTTP_STATUS:
        rule = HTTP_STATUS[status]
    elif status is not None and 400 <= status < 500:
        rule = HTTP_STATUS[400]
    else:  # 5xx, or a 2xx/3xx whose body was not what QuickBooks sends: try again
        rule = Rule(_T, "QuickBooks sent an unreadable answer; billsync retries")
    return ConnectorError(
        system=SYSTEM,
        error_class=rule.error_class,
        message=f"{rule.fix} (HTTP {status})",
        code=f"HTTP_{status}",
        retry_after=None,
    )


def transport_error(exc: BaseException) -> ConnectorError:
    """A network-level failure (no QuickBooks answer) as a ConnectorError."""
    for kind, rule in EXCEPTIONS:
        if isinstance(exc, kind):
            return ConnectorError(
                system=SYSTEM,
                error_class=rule.error_class,
                message=f"{rule.fix} ({type(exc).__name__})",
                code=type(exc).__name__,
            )
    raise TypeError(f"not a transport error: {type(exc).__name__}")


def oauth_error(status: int, error: str | None) -> ConnectorError:
    """An Intuit token-endpoint failure as a ConnectorError (never quoting the body)."""
    if error and error in OAUTH_ERRORS:
        rule = OAUTH_ERRORS[error]
    elif status >= 500:
        rule = Rule(_T, "Intuit's token endpoint had a server error; retried")
    elif status == 429:
        rule = Rule(_R, "Intuit's token endpoint throttled billsync")
    else:
        rule = Rule(_A, f"Intuit refused the token request (HTTP {status}); {RECONNECT}")
    return ConnectorError(
        system=SYSTEM, error_class=rule.error_class, message=rule.fix, code=error or str(status)
    )
