"""Salesforce's error shapes.

REST errors are a JSON *array* of `{"message", "errorCode"[, "fields"]}`; per-record
errors inside sObject Collections results use `statusCode` instead of `errorCode`; the
OAuth endpoint answers `{"error", "error_description"}` like any OAuth server.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from billsync.sandbox import jsonutil


class SalesforceError(Exception):
    """A request-level failure: HTTP status plus one REST error body."""

    def __init__(
        self, status: int, error_code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        error: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            error["fields"] = self.fields
        return [error]


class WriteError(Exception):
    """Why one record could not be written (a `statusCode` in Collections results)."""

    def __init__(self, status_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.fields = fields or []

    def result(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}

    def as_request_error(self, status: int = 400) -> SalesforceError:
        """The single-record endpoints report the same failure as a REST error."""
        return SalesforceError(status, self.status_code, self.message, self.fields)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        jsonutil.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def error_response(error: SalesforceError, headers: dict[str, str] | None = None) -> Response:
    return json_response(error.body(), error.status, headers)


def not_found() -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response({"error": error, "error_description": description}, status)


def request_limit_exceeded(message: str = "TotalRequests Limit exceeded.") -> SalesforceError:
    return SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", message)
