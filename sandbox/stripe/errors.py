"""Stripe's error bodies, and the exception handlers raise to produce them.

Stripe answers every failure with `{"error": {"type", "code", "message", "param",
"doc_url", "request_log_url"}}`; stripe-python picks the exception class from the HTTP
status plus `type`/`code` (`_api_requestor.specific_v1_api_error`): 429, or 400 with
`code=rate_limit` -> RateLimitError; 400/404 with `type=idempotency_error` ->
IdempotencyError, else InvalidRequestError; 401 -> AuthenticationError; others APIError.
"""

from __future__ import annotations

from typing import Any

DOCS = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """Raised anywhere below a handler; the endpoint wrapper renders it."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        saved: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        # Stripe saves an idempotent result only once the endpoint began executing:
        # a request that failed parameter validation can be retried with the same key.
        self.saved = saved

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = DOCS + self.code.replace("_", "-")
        if self.param:
            error["param"] = self.param
        if request_id:
            error["request_log_url"] = (
                f"https://dashboard.stripe.com/test/logs/{request_id}?t=0"  # shape only
            )
        return {"error": error}


def missing(param: str) -> StripeError:
    return StripeError(
        f"Missing required param: {param}.", code="parameter_missing", param=param, saved=False
    )


def invalid(param: str, message: str, code: str = "parameter_invalid") -> StripeError:
    return StripeError(message, code=code, param=param, saved=False)


def unknown(param: str) -> StripeError:
    return StripeError(
        f"Received unknown parameter: {param}", code="parameter_unknown", param=param, saved=False
    )


def not_emulated(param: str, what: str) -> StripeError:
    """A real Stripe feature the sandbox refuses rather than silently ignores."""
    return StripeError(
        f"The billsync sandbox does not emulate {what} (parameter: {param}).",
        param=param,
        saved=False,
    )


def no_such(kind: str, object_id: str, param: str = "id", *, in_path: bool = True) -> StripeError:
    # A missing object named in the URL is a 404; one named in a parameter is a 400.
    return StripeError(
        f"No such {kind}: '{object_id}'",
        status=404 if in_path else 400,
        code="resource_missing",
        param=param,
    )


def state(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """A valid request the object's current state forbids (finalized, voided, ...)."""
    return StripeError(message, code=code, param=param)


def idempotency_conflict(key: str) -> StripeError:
    return StripeError(
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
        type="idempotency_error",
        saved=False,
    )


def mask_key(key: str) -> str:
    """Stripe never echoes a secret: `sk_test_****1234`."""
    prefix = next(
        (p for p in ("sk_test_", "sk_live_", "rk_test_", "rk_live_") if key.startswith(p)), ""
    )
    return f"{prefix}****{key[-4:]}" if len(key) >= 4 else "****"


def invalid_api_key(key: str) -> StripeError:
    return StripeError(f"Invalid API Key provided: {mask_key(key)}", status=401, saved=False)


def no_api_key() -> StripeError:
    return StripeError(
        "You did not provide an API key. You need to provide your API key in the "
        "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
        "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
        "or we can help at https://support.stripe.com/.",
        status=401,
        saved=False,
    )


def rate_limited() -> StripeError:
    return StripeError(
        "Too many requests hit the API too quickly. We recommend an exponential backoff of "
        "your requests.",
        status=429,
        code="rate_limit",
        saved=False,
    )


def server_error() -> StripeError:
    # Stripe-Should-Retry: true makes stripe-python retry (when retries are enabled).
    return StripeError(
        "An unknown error occurred",
        status=500,
        type="api_error",
        headers={"Stripe-Should-Retry": "true"},
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
        status=404,
        saved=False,
    )
