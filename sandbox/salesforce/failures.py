"""Write failures injected through the admin API, to test partial-failure handling.

`POST /_sandbox/salesforce/fail_writes {"ids": [...], "statusCode": ..., "message": ...}`
makes every API write to those records fail as if a validation rule or trigger had
rejected it, optionally only `times` times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from billsync.sandbox.salesforce import ids
from billsync.sandbox.salesforce.errors import WriteError


@dataclass
class InjectedFailure:
    status_code: str
    message: str
    fields: list[str]
    remaining: int | None

    def describe(self) -> dict[str, Any]:
        return {
            "statusCode": self.status_code,
            "message": self.message,
            "fields": self.fields,
            "times": self.remaining,
        }


class FailurePlan:
    def __init__(self) -> None:
        self._by_id: dict[str, InjectedFailure] = {}

    def clear(self) -> None:
        self._by_id.clear()

    def add(self, body: dict[str, Any]) -> None:
        record_ids = body.get("ids")
        if not isinstance(record_ids, list) or not all(isinstance(i, str) for i in record_ids):
            raise ValueError("ids must be a list of record ids")
        times = body.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError("times must be a positive integer")
        fields = body.get("fields", [])
        if not isinstance(fields, list):
            raise ValueError("fields must be a list of field names")
        failure = InjectedFailure(
            status_code=str(body.get("statusCode", "FIELD_CUSTOM_VALIDATION_EXCEPTION")),
            message=str(body.get("message", "Record rejected by a validation rule")),
            fields=[str(f) for f in fields],
            remaining=times,
        )
        for record_id in record_ids:
            self._by_id[ids.to18(record_id)] = failure

    def check(self, record_id: str) -> None:
        """Raise the injected error for this record, if any (counting down `times`)."""
        failure = self._by_id.get(record_id)
        if failure is None:
            return
        if failure.remaining is not None:
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._by_id = {k: v for k, v in self._by_id.items() if v is not failure}
        raise WriteError(failure.status_code, failure.message, list(failure.fields))

    def describe(self) -> dict[str, Any]:
        return {record_id: failure.describe() for record_id, failure in self._by_id.items()}
