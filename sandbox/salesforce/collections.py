"""sObject Collections: `POST|PATCH /services/data/vNN.N/composite/sobjects`.

- At most 200 records (EXCEEDED_ID_LIMIT for the whole request otherwise).
- Every record needs `attributes.type`; PATCH records need `id`, POST records must
  not have one.
- HTTP 200 even when records fail: the body is one `{id, success, errors}` per record,
  in request order, and the errors carry `statusCode` (not `errorCode`).
- allOrNone=true: if any record fails nothing is saved, and the records that were fine
  report ALL_OR_NONE_OPERATION_ROLLED_BACK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from billsync.sandbox.salesforce.errors import SalesforceError, WriteError, json_response
from billsync.sandbox.salesforce.store import PreparedWrite, Store

MAX_RECORDS = 200
ROLLED_BACK = WriteError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    [],
)


@dataclass
class _Outcome:
    record_id: str | None
    prepared: PreparedWrite | None = None
    error: WriteError | None = None

    def result(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.record_id:
            body["id"] = self.record_id
        body["success"] = self.error is None
        body["errors"] = [self.error.result()] if self.error else []
        return body


class Collections:
    def __init__(self, store: Store) -> None:
        self.store = store

    def handle(self, body: Any, *, creating: bool) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "the body must be an object with a records list"
            )
        records = body["records"]
        if len(records) > MAX_RECORDS:
            raise SalesforceError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {MAX_RECORDS} records into "
                "this call",
            )
        all_or_none = body.get("allOrNone", False) is True
        outcomes = [self._prepare(record, creating) for record in records]
        failed = any(outcome.error for outcome in outcomes)
        with self.store.transaction():
            self._apply(outcomes, rollback=all_or_none and failed, creating=creating)
        return json_response([outcome.result() for outcome in outcomes])

    def _apply(self, outcomes: list[_Outcome], *, rollback: bool, creating: bool) -> None:
        for outcome in outcomes:
            if outcome.prepared is None:
                continue
            if rollback:
                outcome.error = ROLLED_BACK
                if creating:
                    outcome.record_id = None
                continue
            outcome.record_id = self.store.apply(outcome.prepared)["Id"]

    def _prepare(self, record: Any, creating: bool) -> _Outcome:
        if not isinstance(record, dict):
            return _Outcome(None, error=WriteError("JSON_PARSER_ERROR", "records must be objects"))
        attributes = record.get("attributes")
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        record_id = record.get("id", record.get("Id"))
        if not isinstance(type_name, str):
            error = WriteError("INVALID_TYPE", "Must send a concrete entity type.", [])
            return _Outcome(None, error=error)
        definition = self.store.schema.object(type_name)
        if definition is None:
            error = WriteError("INVALID_TYPE", f"sObject type '{type_name}' is not supported.", [])
            return _Outcome(None, error=error)
        try:
            if creating:
                return _Outcome(None, self.store.prepare_create(definition, record, "api"))
            if not record_id:
                raise WriteError("MISSING_ARGUMENT", "Id not specified in an update call", [])
            fields = {k: v for k, v in record.items() if k.lower() != "id"}
            prepared = self.store.prepare_update(definition, record_id, fields, "api")
            return _Outcome(prepared.record_id, prepared)
        except WriteError as exc:
            known = (
                self.store.find(record_id) if isinstance(record_id, str) and not creating else None
            )
            return _Outcome(known[1]["Id"] if known else None, error=exc)
