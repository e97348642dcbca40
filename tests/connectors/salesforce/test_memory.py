"""The pull streams: memory stays at one page however many deals match."""

from __future__ import annotations

import weakref
from typing import Any

import requests
from requests.adapters import BaseAdapter

from billsync.connectors.salesforce import SalesforceDealSource
from billsync.connectors.salesforce import client as client_module
from billsync.core.http import VendorSession
from tests.connectors.salesforce import (
    INSTANCE,
    dumps,
    limit_header,
    opportunity,
    query_page,
    settings,
    token_body,
)

PAGE = 200


class GeneratedOrg(BaseAdapter):
    """A fake transport serving `deals` Opportunities, PAGE per page, built on demand."""

    def __init__(self, deals: int) -> None:
        super().__init__()
        self.deals = deals
        self.pages_served = 0

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        url = request.url or ""
        if url.endswith("/services/oauth2/token"):
            body = dumps(token_body())
        else:
            index = int(url.rsplit("-", 1)[1]) if "/query/01gmem-" in url else 0
            start = index * PAGE
            rows = [opportunity(n) for n in range(start, min(start + PAGE, self.deals))]
            has_more = start + PAGE < self.deals
            next_url = f"/services/data/v66.0/query/01gmem-{index + 1}" if has_more else None
            body = dumps(query_page(rows, total=self.deals, next_url=next_url))
            self.pages_served += 1
        response = requests.Response()
        response.status_code = 200
        response._content = body.encode()
        response.headers.update({"Content-Type": "application/json", **limit_header()})
        response.url = url
        response.request = request
        return response

    def close(self) -> None:
        pass


class Row(dict[str, Any]):  # a dict that can be weakly referenced, to count live records
    pass


def test_pulling_20000_deals_keeps_only_one_page_alive(monkeypatch) -> None:
    alive = [0]

    def released() -> None:
        alive[0] -= 1

    def tracked(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        row = Row(pairs)
        if str(row.get("Id", "")).startswith("006"):
            alive[0] += 1
            weakref.finalize(row, released)
        return row

    class TrackingSalesforce(client_module.Salesforce):  # type: ignore[misc,name-defined]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**{**kwargs, "object_pairs_hook": tracked})

    monkeypatch.setattr(client_module, "Salesforce", TrackingSalesforce)
    session = VendorSession()
    org = GeneratedOrg(100 * PAGE)  # 20,000 deals over 100 pages
    session.mount(INSTANCE, org)
    source = SalesforceDealSource(settings(), company_currency="USD", session=session)
    most_alive = count = 0
    for checkpointed in source.pull(None):
        count += 1
        most_alive = max(most_alive, alive[0])
        del checkpointed  # the engine records each deal and lets it go
    assert count == 100 * PAGE and org.pages_served == 100
    # Holding every record would reach 20,000; streaming holds at most the current page.
    assert most_alive <= PAGE, most_alive
