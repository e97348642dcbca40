"""What a connector package provides to run the contract suite: a harness.

A harness builds the connector *through its entry point* against a test backend (a
sandbox, a vendor test account, a local fake) and makes things happen there: seed
deals, pay an invoice, hand over the webhooks the backend signed. It must fail loudly
(an assertion or an exception) when it cannot do what it is asked, never return
quietly (STYLE.md 8); a fake backend should likewise refuse requests it does not
understand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from billsync.core import plugins
from billsync.core.canonical import Customer, InvoiceDraft, InvoiceRef
from billsync.core.plugins import BuildContext, ConnectorParts
from billsync.core.settings import ConnectorSection

__all__ = ["SignedRequest", "SourceHarness", "TargetHarness", "build_connector"]


@dataclass(frozen=True)
class SignedRequest:
    """A webhook request exactly as the backend sent it."""

    body: bytes
    headers: dict[str, str]


class SourceHarness(Protocol):
    """Builds a deal source against a test backend and changes deals there."""

    name: str
    """The entry-point name (what ``sync.source`` says)."""
    sleeps: list[float]
    """Every back-off the built connectors asked for (``BuildContext.sleep``)."""

    def build(self) -> ConnectorParts:
        """Through the entry point (`build_connector`), tiny retry counts, ``sleep``
        recording into ``sleeps``. Each call is a fresh process's connector."""
        ...

    def build_with_bad_credentials(self) -> ConnectorParts: ...

    def seed_deals(self, count: int) -> list[str]:
        """Put ``count`` closed-won deals in the backend; their ids."""
        ...

    def change_deal(self, deal_id: str) -> None:
        """Change the deal so that the source must report it again (newer revision)."""
        ...

    def written_invoice_number(self, deal_id: str) -> str | None:
        """The invoice number the last write-back left on the deal in the backend."""
        ...

    def inject_server_errors(self) -> None:
        """Make every call to the backend fail with a 5xx until `clear_faults`."""
        ...

    def clear_faults(self) -> None: ...


class TargetHarness(Protocol):
    """Builds an invoice target (+ feed + webhooks) and makes money move in its backend."""

    name: str
    """The entry-point name (what ``sync.targets`` lists, and drafts' ``target``)."""
    sleeps: list[float]
    missing_invoice_id: str
    """A well-formed invoice id that does not exist in the backend."""

    def build(self) -> ConnectorParts: ...

    def build_with_bad_credentials(self) -> ConnectorParts: ...

    def build_with_wrong_webhook_secret(self) -> ConnectorParts: ...

    def customer(self) -> Customer:
        """A customer as the mapping would produce it for this target (no external id)."""
        ...

    def draft(self, deal_id: str, customer: Customer) -> InvoiceDraft:
        """A valid draft for the deal as the mapping would produce it (item refs that
        exist in the backend, the target's reference fields, the idempotency key)."""
        ...

    def invoices_in_backend(self, deal_id: str) -> int:
        """How many invoices the backend holds for the deal (read directly, not through
        the connector)."""
        ...

    def pay_in_full(self, invoice: InvoiceRef) -> None:
        """Pay the invoice in the backend, out of band, as a customer would."""
        ...

    def signed_webhooks(self) -> list[SignedRequest]:
        """Every webhook request the backend has signed since the test began."""
        ...

    def inject_server_errors(self) -> None: ...

    def clear_faults(self) -> None: ...


def build_connector(name: str, section: ConnectorSection, context: BuildContext) -> ConnectorParts:
    """Build a connector exactly as billsync does: find its spec by entry point, build it
    from its own settings section (an instance of the spec's ``settings``, as billsync
    reads it from ``<name>:`` in the configuration, e.g. ``Settings.connector(name)``)."""
    spec = plugins.discover([name], config_key="contract tests")[name]
    assert isinstance(section, spec.settings), (
        f"{name}: the section is a {type(section).__name__}, not {spec.settings.__name__}"
    )
    parts = spec.build(section, context)
    assert isinstance(parts, ConnectorParts), f"{name}: build() returned {type(parts).__name__}"
    return parts
