"""Stripe's cursor pagination: `limit` (1–100, default 10), `starting_after`, `ending_before`.

Lists come newest first (invoice lines: in invoice order). `ending_before` returns the
`limit` items just before the cursor in that order, still in that order; `has_more` then
says whether even earlier items exist, which is what stripe-python's
`auto_paging_iter` reads when it walks backwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from billsync.sandbox.stripe.errors import StripeError, no_such
from billsync.sandbox.stripe.params import Params

PAGING = ("limit", "starting_after", "ending_before")


def page(
    ids: Sequence[str],
    params: Params,
    label: str,
    match: Callable[[str], bool] | None = None,
) -> tuple[list[str], bool]:
    """The ids of one page (display order) and `has_more`."""
    limit = params.int("limit", minimum=1, maximum=100) or 10
    after = params.str("starting_after")
    before = params.str("ending_before")
    if after and before:
        raise StripeError(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
            saved=False,
        )
    cursor = after or before
    if cursor is None:
        start, step = 0, 1
    else:
        try:
            position = ids.index(cursor)
        except ValueError:
            raise no_such(
                label, cursor, "starting_after" if after else "ending_before", in_path=False
            ) from None
        start, step = (position + 1, 1) if after else (position - 1, -1)
    found: list[str] = []
    index = start
    while 0 <= index < len(ids) and len(found) <= limit:
        object_id = ids[index]
        if match is None or match(object_id):
            found.append(object_id)
        index += step
    has_more = len(found) > limit
    found = found[:limit]
    if step < 0:
        found.reverse()
    return found, has_more


def list_object(data: list[Any], has_more: bool, url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
