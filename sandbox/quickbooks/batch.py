"""`POST /batch`: up to 30 operations or queries, answered item by item.

Items run in order, but an item cannot see what an earlier item of the same batch
created (QBO commits a batch's creations only at the end): those new records are
hidden from reads, references and queries until the batch returns, so a later item
that names one fails with 610. A failing item is a `Fault` inside an HTTP 200.
"""

from __future__ import annotations

from typing import Any

from billsync.sandbox.quickbooks import query, search
from billsync.sandbox.quickbooks.errors import QboFault, invalid
from billsync.sandbox.quickbooks.operations import Operations
from billsync.sandbox.quickbooks.spec import Write
from billsync.sandbox.quickbooks.store import ENTITIES, Record

MAX_ITEMS = 30


def run_batch(ops: Operations, w: Write, body: Any) -> list[dict[str, Any]]:
    items = body.get("BatchItemRequest") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise invalid("BatchItemRequest must be a non-empty list", "BatchItemRequest")
    if len(items) > MAX_ITEMS:
        raise QboFault(
            "2010",
            "Request has invalid or unsupported property",
            f"Batch size {len(items)} exceeds the maximum of {MAX_ITEMS} BatchItemRequest items",
            "BatchItemRequest",
        )
    answers = []
    w.realm.hidden.clear()
    try:
        for item in items:
            bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
            try:
                answers.append({"bId": bid, **_run_item(ops, w, item)})
            except QboFault as fault:
                answers.append({"bId": bid, "Fault": fault.fault()})
    finally:
        w.realm.hidden.clear()
    return answers


def _run_item(ops: Operations, w: Write, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise invalid("A BatchItemRequest must be an object")
    if "Query" in item:
        return {"QueryResponse": search.run(w.realm, query.parse(str(item["Query"])))}
    named = [key for key in item if key in ENTITIES]
    if len(named) != 1:
        raise invalid("A BatchItemRequest needs exactly one entity or a Query")
    entity = named[0]
    body = item[entity]
    operation = item.get("operation")
    record: Record
    if operation == "create":
        if not isinstance(body, dict):
            raise invalid(f"{entity} must be an object")
        record = ops.create(w, entity, body)
        w.realm.hidden.add((entity, record["Id"]))
    elif operation == "update" and item.get("optionsData") == "void":
        record = ops.void(w, entity, body)
    elif operation == "update":
        if not isinstance(body, dict):
            raise invalid(f"{entity} must be an object")
        record = ops.update(w, entity, body)
    elif operation == "delete":
        record = ops.delete(w, entity, body)
    else:
        raise invalid(f"Unsupported batch operation {operation!r}", "operation")
    return {entity: record}
