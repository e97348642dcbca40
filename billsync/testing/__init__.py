"""The shared connector contract: what every deal source and invoice target must do.

It ships with billsync, so a connector package runs it from an installed billsync:
subclass `DealSourceContract` or `InvoiceTargetContract` in a ``Test…`` class of your
own test file and override its ``harness`` fixture with a `SourceHarness` or
`TargetHarness` (billsync.testing.harness), and pytest collects the inherited tests.
The tests know nothing about any vendor; docs/connectors.md shows a whole harness.

What is checked (DESIGN.md "Exactly once", "Errors", "Webhooks"; billsync/core/protocols.py):
- the entry point loads and builds the parts the role needs;
- sources: pull from no cursor, then from the returned cursor (nothing new), then a
  changed deal comes back with a newer revision; a deal that cannot be read is a
  rejection naming the field and the reason; ``fetch_deals`` (when the source has it)
  re-reads the pulled deals by id; write-back reports per-deal outcomes;
- targets: customers and invoices are created exactly once (same draft twice, batch,
  a second process); ``find_invoices`` sees what an earlier process created; fetch,
  and not_found for an unknown invoice;
- payment feeds: a payment made in the backend is reported once (one money fact, the
  whole amount); a read from the stored cursor brings no new fact (a replay of events
  already seen is allowed: the ledger dedupes on event id);
- webhooks: a request the backend signed verifies and resolves to the payment; a
  tampered body, a missing signature and the wrong secret are rejected;
- errors: server errors surface as retryable `ConnectorError`s after bounded in-call
  retries (and the connector works again once they stop); bad credentials are
  ``auth``, raised without retrying.

pytest is an optional dependency (``pip install 'billsync[testing]'``), imported here
and not lazily: the contracts are pytest test classes (fixtures, ``pytest.raises``,
skips), so there is nothing to use without it, and a billsync that serves webhooks
should not pull a test runner into its image. Nothing of billsync imports this
package (the import-linter contracts in pyproject.toml); it depends on billsync.core
only.
"""

from __future__ import annotations

try:
    import pytest
except ModuleNotFoundError as missing:
    raise ModuleNotFoundError(
        "billsync.testing runs under pytest: pip install 'billsync[testing]'",
        name=missing.name,
    ) from None

# Outside the author's test files pytest would not rewrite these asserts: a failing
# check would say only `AssertionError`. Registered before they are imported.
pytest.register_assert_rewrite(
    "billsync.testing.checks",
    "billsync.testing.harness",
    "billsync.testing.source",
    "billsync.testing.target",
)

from billsync.testing.checks import drain_feed, new_deal_id  # noqa: E402
from billsync.testing.harness import (  # noqa: E402
    SignedRequest,
    SourceHarness,
    TargetHarness,
    build_connector,
)
from billsync.testing.source import DealSourceContract  # noqa: E402
from billsync.testing.target import InvoiceTargetContract  # noqa: E402

__all__ = [
    "DealSourceContract",
    "InvoiceTargetContract",
    "SignedRequest",
    "SourceHarness",
    "TargetHarness",
    "build_connector",
    "drain_feed",
    "new_deal_id",
]
