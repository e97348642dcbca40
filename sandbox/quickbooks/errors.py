"""QuickBooks' error bodies, with the codes and wording the real service uses.

Only the first error of a request is ever reported (the real API stops at the first
one), so a `QboFault` carries exactly one error. Validation faults answer HTTP 400;
inside a batch the same fault is an item of an HTTP 200 response.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.responses import Response

from billsync.sandbox import jsonutil
from billsync.sandbox.quickbooks.timefmt import response_time

OBJECT_NOT_FOUND = "Object Not Found"
INACTIVE_DETAIL = (
    "Object Not Found : Something you're trying to use has been made inactive. "
    "Check the fields with accounts, customers, items, vendors or employees."
)
BUSINESS = "A business validation error has occurred while processing your request"


@dataclass
class QboFault(Exception):
    code: str
    message: str
    detail: str = ""
    element: str = ""
    type: str = "ValidationFault"
    status: int = 400

    def fault(self) -> dict[str, Any]:
        error = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element:
            error["element"] = self.element
        return {"Error": [error], "type": self.type}


def not_found(element: str = "", detail: str = INACTIVE_DETAIL) -> QboFault:
    return QboFault("610", OBJECT_NOT_FOUND, detail, element)


def deleted_txn(entity: str) -> QboFault:
    return not_found(detail=f"Object Not Found : Another user has deleted this {entity}.")


def required(field: str, detail: str | None = None) -> QboFault:
    return QboFault(
        "2020",
        "Required param missing, need to supply the required value for the API",
        detail or f"Required parameter {field} is missing in the request",
        field,
    )


def business(detail: str, element: str = "") -> QboFault:
    return QboFault("6000", BUSINESS, f"Business Validation Error: {detail}", element)


def invalid(detail: str, element: str = "") -> QboFault:
    return QboFault("2010", "Request has invalid or unsupported property", detail, element)


def too_long(element: str, limit: int, supplied: int) -> QboFault:
    return QboFault(
        "2050",
        "String length is either shorter or longer than supported by specification",
        f"String length specified does not match the supported length. "
        f"Min:0 Max:{limit} supplied length:{supplied}",
        element,
    )


def stale(entity: str) -> QboFault:
    return QboFault(
        "5010",
        "Stale Object Error",
        "Stale Object Error : You and sandbox were working on this at the same time. "
        f"sandbox finished before you did, so your work on this {entity} was not saved.",
    )


def duplicate_name(name: str, owner_id: str) -> QboFault:
    return QboFault(
        "6240",
        "Duplicate Name Exists Error",
        f"The name supplied already exists. : Another customer, vendor or employee is "
        f"already using the name '{name}' (Id={owner_id}). Please use a different name.",
    )


def unsupported(operation: str, entity: str) -> QboFault:
    return QboFault(
        "500",
        "Unsupported Operation",
        f"Operation {operation} is not supported for {entity}.",
    )


def fault_body(fault: QboFault, now: datetime) -> dict[str, Any]:
    return {"Fault": fault.fault(), "time": response_time(now)}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """QBO JSON: Decimals written as JSON numbers, digit for digit (`billsync.sandbox.jsonutil`)."""
    return Response(
        jsonutil.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def fault_response(fault: QboFault, now: datetime) -> Response:
    return json_response(fault_body(fault, now), fault.status)


def authentication_failed(now: datetime) -> Response:
    # python-quickbooks turns any 401 into AuthorizationException(error_code=401)
    # without reading the body; other clients read this Fault.
    body = {
        "Fault": {
            "Error": [
                {
                    "Message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "code": "3200",
                }
            ],
            "type": "AUTHENTICATION",
        },
        "time": response_time(now),
    }
    return json_response(body, 401, {"WWW-Authenticate": 'Bearer realm="Intuit"'})


def authorization_failed(now: datetime) -> Response:
    """A valid token used against another company."""
    body = {
        "Fault": {
            "Error": [
                {
                    "Message": "message=ApplicationAuthorizationFailed; errorCode=003100; "
                    "statusCode=403",
                    "code": "3100",
                }
            ],
            "type": "AUTHORIZATION",
        },
        "time": response_time(now),
    }
    return json_response(body, 403)


THROTTLE_MESSAGE = "message=ThrottleExceeded; errorCode=003001; statusCode=429"


def throttled(now: datetime, as_xml: bool = True) -> Response:
    """HTTP 429. The real throttle page has long come back as XML even when JSON was
    asked for (api-facts §2.7), which python-quickbooks reports as
    QuickbooksException 10000 "Error reading json response". No Retry-After header:
    Intuit does not send one (its guidance is to wait 60 s)."""
    if not as_xml:
        body = {
            "Fault": {
                "Error": [{"Message": THROTTLE_MESSAGE, "code": "3001"}],
                "type": "ThrottleExceeded",
            },
            "time": response_time(now),
        }
        return json_response(body, 429)
    xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{response_time(now)}">'
        '<Fault type="ThrottleExceeded"><Error code="3001">'
        f"<Message>{THROTTLE_MESSAGE}</Message>"
        "</Error></Fault></IntuitResponse>"
    )
    return Response(xml, status_code=429, media_type="application/xml")


def system_fault(now: datetime) -> Response:
    fault = QboFault(
        "10000",
        "An application error has occurred while processing your request",
        "System Failure Error: An unexpected error occurred while accessing or saving "
        "your data. Please wait a few minutes and try again.",
        type="SystemFault",
        status=503,
    )
    return fault_response(fault, now)
