"""A deal's content revision: what billing depends on, not when the source stamped it.

A deal source moves a record's revision stamp on every write — including billsync's
own write-back — so the stamp cannot tell "the deal changed" from "we wrote to it". The fingerprint
hashes exactly what an invoice is made of (account, currency, amount, lines), so a
write-back leaves it unchanged and a real change after invoicing is detected.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from billsync.core.canonical import Deal

FINGERPRINT_LENGTH = 20


def billing_content(deal: Deal) -> dict[str, Any]:
    return {
        "account": deal.account.id,
        "currency": deal.currency,
        "amount": format(deal.amount, "f"),
        "lines": [
            [
                line.id,
                line.product_code,
                format(line.quantity, "f"),
                format(line.unit_price, "f"),
                None if line.discount_percent is None else format(line.discount_percent, "f"),
                None if line.service_date is None else line.service_date.isoformat(),
            ]
            for line in deal.lines
        ],
    }


def deal_fingerprint(deal: Deal) -> str:
    text = json.dumps(billing_content(deal), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]


def describe_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Which billing attributes differ, for a deal_changed_after_invoice discrepancy."""
    return [key for key in sorted(after) if before.get(key) != after.get(key)]


def full_fingerprint(deal: Deal) -> str:
    """Everything about the deal but the source's stamp: a rejected deal is planned again
    only when something that could be its fix (routing, terms, account, …) changed."""
    data = deal.model_dump(mode="json", exclude={"revision"})
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]
