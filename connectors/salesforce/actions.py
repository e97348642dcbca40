"""Write-back: the money state onto the Opportunity, through sObject Collections.

``PATCH /services/data/vNN.N/composite/sobjects`` with ``allOrNone: false`` and at most
200 records per call (``salesforce.writeback_batch_size``). Salesforce answers HTTP 200
even when records fail; the body is one ``{id, success, errors:[{statusCode, message,
fields}]}`` per record, in request order (``statusCode``, not ``errorCode``, here). Each
failed record becomes a `ConnectorError` for its deal, classified by the client's table.

Numbers are sent as exact JSON numbers: `requests`' ``json=`` uses ``json.dumps``, which
cannot serialise a Decimal (and going through float would lose cents), so the body is
serialised here and passed as bytes.

The Billing Status label comes with each update (``DealWriteBack.billing_status``),
computed once from the invoice's money state by ``billsync.core.money_state.billing_status``;
a deal with no invoice and only a sync error is written as ``Error``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from billsync.connectors.salesforce.client import (
    SYSTEM,
    SalesforceClient,
    rule_for,
    salesforce_detail,
)
from billsync.connectors.salesforce.fields import WriteBackFields
from billsync.core.canonical import DealWriteBack
from billsync.core.money_state import BillingStatus
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = ["WriteBack", "dumps_exact", "render_record"]

# Billing_Sync_Error__c may be a plain Text(255) field in an org; longer text would fail
# the whole record with STRING_TOO_LONG. The full message stays in billsync's ledger.
SYNC_ERROR_MAX = 255
# Which fix to name when a write-back field is the problem (the generic table speaks
# of "the mapping"; here it is specifically the writeback section).
_WRITE_FIXES = {
    "INVALID_FIELD": "create the field on Opportunity or change writeback in the mapping",
    "INVALID_FIELD_FOR_INSERT_UPDATE": (
        "make the field editable for the integration user or change writeback in the mapping"
    ),
}


def render_record(
    deal_id: str,
    update: DealWriteBack | None,
    *,
    fields: WriteBackFields,
    error: str | None = None,
    synced_at: datetime | None = None,
) -> dict[str, Any]:
    """One sObject Collections record. Without an invoice only status and error are set."""
    status = update.billing_status if update is not None else BillingStatus.ERROR.value
    values: dict[str | None, Any] = {fields.status: status}
    if update is not None:
        values |= {
            fields.invoice_id: update.invoice_external_id,
            fields.invoice_number: update.invoice_number,
            fields.invoice_url: update.invoice_url,
            fields.amount_paid: update.amount_paid,
            fields.balance_due: update.balance,
            fields.amount_refunded: update.amount_refunded,
            fields.amount_credited: update.amount_credited,
            fields.tax: update.tax,
            fields.total: update.total,
            fields.due_date: update.due_date,
            fields.last_payment_date: update.last_payment_date,
        }
    values[fields.sync_error] = _shorten(error) if error else None
    if synced_at is not None:
        values[fields.synced_at] = synced_at
    record: dict[str, Any] = {"attributes": {"type": "Opportunity"}, "id": deal_id}
    record.update((name, value) for name, value in values.items() if name is not None)
    return record


class WriteBack:
    def __init__(
        self,
        client: SalesforceClient,
        fields: WriteBackFields,
        *,
        batch_size: int,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if not 1 <= batch_size <= 200:
            raise ValueError("sObject Collections take 1 to 200 records per call")
        self._client = client
        self._fields = fields
        self._batch_size = batch_size
        self._now = now or (lambda: datetime.now(UTC))

    def write(
        self,
        updates: Sequence[DealWriteBack],
        errors: Mapping[str, str] | None = None,
        *,
        previous: Mapping[str, DealWriteBack] | None = None,
    ) -> dict[str, ConnectorError]:
        """Write changed deals; failures by deal id. Raises only if no call got through."""
        errors, previous = errors or {}, previous or {}
        by_deal: dict[str, DealWriteBack | None] = {u.deal_id: u for u in updates}
        by_deal.update((deal_id, None) for deal_id in errors if deal_id not in by_deal)
        synced_at = self._now()
        records = [
            render_record(
                deal_id,
                update,
                fields=self._fields,
                error=errors.get(deal_id),
                synced_at=synced_at,
            )
            for deal_id, update in by_deal.items()
            if not _unchanged(deal_id, update, previous, errors)
        ]
        failures: dict[str, ConnectorError] = {}
        failed: ConnectorError | None = None
        got_through = not records
        for start in range(0, len(records), self._batch_size):
            batch = records[start : start + self._batch_size]
            if failed is None:
                try:
                    failures.update(self._send(batch))
                    got_through = True
                    continue
                except ConnectorError as exc:
                    # In-call retries are spent (or it is auth / quota / a field the org
                    # lacks, which every batch would hit): stop calling; the remaining
                    # deals fail with the same error and go to the retry queue.
                    failed = exc
            for record in batch:
                failures[record["id"]] = failed.with_context(deal_id=record["id"])
        if failed is not None and not got_through:
            raise failed
        return failures

    def _send(self, batch: list[dict[str, Any]]) -> dict[str, ConnectorError]:
        body = {"allOrNone": False, "records": batch}
        results = self._client.patch_collection(dumps_exact(body).encode())
        if not isinstance(results, list) or len(results) != len(batch):
            raise ConnectorError(
                system=SYSTEM,
                error_class=ErrorClass.TRANSIENT,
                code="UNEXPECTED_RESPONSE",
                message="Salesforce answered the write-back with an unexpected body; retried",
            )
        failures = {}
        for record, result in zip(batch, results, strict=True):
            if isinstance(result, dict) and result.get("success") is True:
                continue
            failures[record["id"]] = _record_error(record["id"], result)
        return failures


def _record_error(deal_id: str, result: object) -> ConnectorError:
    raw = result.get("errors") if isinstance(result, dict) else None
    problems = [e for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []
    first = problems[0] if problems else {}
    code = str(first.get("statusCode") or "UNKNOWN_ERROR")
    rule = rule_for(code, 400)
    fields = sorted({str(f) for e in problems for f in (e.get("fields") or [])})
    details = "; ".join(
        f"{e.get('statusCode')}: {salesforce_detail(e.get('message'))}" for e in problems
    )
    on = f"field {', '.join(fields)} on " if fields else ""
    return ConnectorError(
        system=SYSTEM,
        error_class=rule.error_class,
        code=code,
        deal_id=deal_id,
        field=", ".join(fields) or None,
        message=(
            f"Salesforce rejected the write-back to {on}Opportunity {deal_id}: "
            f"{details or code} — {_WRITE_FIXES.get(code, rule.fix)}"
        ),
    )


def _unchanged(
    deal_id: str,
    update: DealWriteBack | None,
    previous: Mapping[str, DealWriteBack],
    errors: Mapping[str, str],
) -> bool:
    # Only the plain case is skipped: a sync error may differ from what was written even
    # when the DealWriteBack is the same, so those deals are always written.
    return update is not None and previous.get(deal_id) == update and deal_id not in errors


def _shorten(text: str) -> str:
    return text if len(text) <= SYNC_ERROR_MAX else text[: SYNC_ERROR_MAX - 1] + "…"


def dumps_exact(value: Any) -> str:
    """JSON with Decimals as exact numbers (``1234.50``, never via float), dates as ISO."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be sent to Salesforce")
        return format(value, "f")
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("naive datetime given for a Salesforce datetime field")
        utc = value.astimezone(UTC)
        return json.dumps(f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}.{utc.microsecond // 1000:03d}Z")
    if isinstance(value, date):
        return json.dumps(value.isoformat())
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}:{dumps_exact(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps_exact(v) for v in value) + "]"
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    raise TypeError(f"cannot serialise {type(value).__name__} for Salesforce")
