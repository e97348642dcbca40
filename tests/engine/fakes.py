"""In-memory source and target with crash and failure injection, for engine tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from billsync.core.canonical import (
    Account,
    Customer,
    Deal,
    DealLine,
    DealWriteBack,
    InvoiceDraft,
    InvoiceMoney,
    InvoiceRef,
    MoneyFact,
    PaymentEvent,
    WebhookNotification,
)
from billsync.core.catalog import ProductMatch, ProductQuery
from billsync.core.idempotency import invoice_key
from billsync.core.protocols import Checkpointed, ConnectorError, Cursor, ErrorClass
from billsync.mappings.loader import load_mappings
from billsync.mappings.plan import Planner
from billsync.sync.engine.cycle import Engine
from billsync.sync.engine.failures import RetryPolicy
from billsync.sync.ledger import Ledger


class Crash(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the engine catches it."""


def make_deal(
    n: int, *, amount_lines: int = 1, stamp: datetime | None = None, **kw: object
) -> Deal:
    lines = tuple(
        DealLine(
            id=f"00k{n:05d}{i:02d}",
            product_code="SEAT",
            quantity=Decimal(2),
            unit_price=Decimal("50.00"),
            service_date=date(2026, 11, 1),
        )
        for i in range(amount_lines)
    )
    fields: dict[str, object] = {
        "id": f"006{n:015d}",
        "account": Account(id=f"001{n % 3:015d}", name=f"Customer {n % 3}"),
        "name": f"Deal {n}",
        "close_date": date(2026, 11, 1),
        "currency": "USD",
        "amount": Decimal("100.00") * amount_lines,
        "lines": lines,
        "revision": stamp or datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=n),
        "target_hint": "QuickBooks",
    }
    fields.update(kw)
    return Deal(**fields)  # type: ignore[arg-type]


@dataclass
class FakeSource:
    deals: list[Deal]
    system: str = "salesforce"
    fail_after: int | None = None
    written: dict[str, DealWriteBack] = field(default_factory=dict)
    errors_written: dict[str, str] = field(default_factory=dict)
    writeback_calls: int = 0
    fetched_ids: list[str] = field(default_factory=list)

    def fetch_deals(self, ids: Sequence[str]) -> Iterator[Deal]:
        wanted = set(ids)
        self.fetched_ids.extend(ids)
        return iter([deal for deal in self.deals if deal.id in wanted])

    def write_back(
        self,
        updates: Sequence[DealWriteBack],
        errors: Mapping[str, str] | None = None,
    ) -> Mapping[str, ConnectorError]:
        self.writeback_calls += 1
        for update in updates:
            self.written[update.deal_id] = update
        self.errors_written.update(errors or {})
        return {}

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def pull(self, since: Cursor | None) -> Iterator[Checkpointed[Deal]]:
        ordered = sorted(self.deals, key=lambda d: (d.revision, d.id))
        for index, deal in enumerate(ordered):
            cursor = f"{deal.revision.isoformat()}|{deal.id}"
            if since and cursor <= since:
                continue
            if self.fail_after is not None and index >= self.fail_after:
                raise ConnectorError(
                    system="salesforce",
                    error_class=ErrorClass.RATE_LIMITED,
                    code="QUOTA_FLOOR",
                    message="quota floor reached",
                )
            yield Checkpointed(deal, cursor)


@dataclass
class FakeCatalog:
    target: str = "quickbooks"

    def resolve_product(self, query: ProductQuery) -> ProductMatch | None:
        return ProductMatch(ref=f"item-{query.product_code}", label=query.product_code)

    def currency_problem(self, currency: str) -> str | None:
        return None

    def term_exists(self, name: str) -> bool:
        return True

    def tax_code_exists(self, code: str) -> bool:
        return True


@dataclass
class FakeTarget:
    target: str = "quickbooks"
    invoices: dict[str, InvoiceRef] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    customers: dict[str, str] = field(default_factory=dict)
    create_calls: int = 0
    customer_calls: int = 0
    # failure injection
    crash_before_create: set[str] = field(default_factory=set)
    crash_after_create: set[str] = field(default_factory=set)
    errors: dict[str, ConnectorError] = field(default_factory=dict)
    error_after_create: dict[str, ConnectorError] = field(default_factory=dict)
    total_offset: Decimal = Decimal(0)
    # read-back (reconciliation): counters and injected read errors
    fetched: list[str] = field(default_factory=list)
    found_passed: list[dict[str, Sequence[InvoiceRef]]] = field(default_factory=list)
    find_calls: int = 0
    fetch_errors: dict[str, ConnectorError] = field(default_factory=dict)
    find_errors: dict[str, ConnectorError] = field(default_factory=dict)
    # Look-ups as QuickBooks does them (by DocNumber) instead of by the deal id: the
    # reference searched is what the engine passes, else the deal id (21 characters).
    by_doc_number: bool = False
    doc_numbers: dict[str, str | None] = field(default_factory=dict)  # invoice -> sent
    references_searched: list[str | None] = field(default_factory=list)
    before_create: list[Callable[[InvoiceDraft], None]] = field(default_factory=list)

    def ensure_customer(self, customer: Customer) -> Customer:
        self.customer_calls += 1
        external = self.customers.setdefault(customer.account_id, f"C{len(self.customers) + 1}")
        return customer.model_copy(update={"external_id": external})

    def find_invoices(self, deal_id: str, *, reference: str | None = None) -> Sequence[InvoiceRef]:
        self.find_calls += 1
        self.references_searched.append(reference)
        if deal_id in self.find_errors:
            raise self.find_errors[deal_id]
        if not self.by_doc_number:
            return [ref for ref in self.invoices.values() if ref.deal_id == deal_id]
        number = reference or deal_id[:21]
        return [
            ref
            for external, ref in self.invoices.items()
            if self.doc_numbers.get(external) == number and ref.deal_id in (None, deal_id)
        ]

    def create_invoice(self, draft: InvoiceDraft) -> InvoiceRef:
        for hook in self.before_create:
            hook(draft)
        self.create_calls += 1
        if draft.deal_id in self.crash_before_create:
            self.crash_before_create.discard(draft.deal_id)
            raise Crash(draft.deal_id)
        if draft.deal_id in self.errors:
            raise self.errors.pop(draft.deal_id)
        if draft.idempotency_key in self.by_key:
            return self.invoices[self.by_key[draft.idempotency_key]]
        external = f"INV{len(self.invoices) + 1}"
        ref = InvoiceRef(
            target=self.target,
            external_id=external,
            deal_id=draft.deal_id,
            number=external,
            currency=draft.currency,
            total=draft.total + self.total_offset,
            status="open",
        )
        self.invoices[external] = ref
        self.doc_numbers[external] = draft.doc_number
        self.by_key[draft.idempotency_key] = external
        if draft.deal_id in self.crash_after_create:
            self.crash_after_create.discard(draft.deal_id)
            raise Crash(draft.deal_id)
        if draft.deal_id in self.error_after_create:
            raise self.error_after_create.pop(draft.deal_id)
        return ref

    def create_invoices(
        self,
        drafts: Sequence[InvoiceDraft],
        *,
        found: Mapping[str, Sequence[InvoiceRef]] | None = None,
    ) -> Mapping[str, InvoiceRef | ConnectorError]:
        self.found_passed.append(dict(found or {}))
        outcomes: dict[str, InvoiceRef | ConnectorError] = {}
        for draft in drafts:
            try:
                outcomes[draft.deal_id] = self.create_invoice(draft)
            except ConnectorError as error:
                outcomes[draft.deal_id] = error
        return outcomes

    def fetch_invoice(self, external_id: str) -> InvoiceRef:
        self.fetched.append(external_id)
        if external_id in self.fetch_errors:
            raise self.fetch_errors[external_id]
        if external_id not in self.invoices:
            raise not_found(f"invoice {external_id} does not exist")
        return self.invoices[external_id]

    # --- changes made in the target, not through billsync ---------------------------

    def change(self, external_id: str, **changes: object) -> InvoiceRef:
        ref = InvoiceRef.model_validate({**self.invoices[external_id].model_dump(), **changes})
        self.invoices[external_id] = ref
        return ref

    def void(self, external_id: str) -> InvoiceRef:
        return self.change(external_id, status="void")

    def delete(self, external_id: str) -> InvoiceRef:
        return self.invoices.pop(external_id)

    def pay(self, external_id: str, amount: str) -> InvoiceRef:
        ref = self.invoices[external_id]
        balance = ref.total - Decimal(amount)
        status = "paid" if balance <= 0 else "open"
        return self.change(external_id, amount_paid=Decimal(amount), balance=balance, status=status)

    def duplicate(self, deal_id: str) -> InvoiceRef:
        original = next(ref for ref in self.invoices.values() if ref.deal_id == deal_id)
        external = f"INV{len(self.invoices) + 1}"
        ref = original.model_copy(update={"external_id": external, "number": external})
        self.invoices[external] = ref
        self.doc_numbers[external] = self.doc_numbers.get(original.external_id)
        return ref

    def catalog(self) -> FakeCatalog:
        return FakeCatalog(self.target)

    def per_deal(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ref in self.invoices.values():
            assert ref.deal_id is not None
            counts[ref.deal_id] = counts.get(ref.deal_id, 0) + 1
        return counts


@dataclass
class BatchTarget(FakeTarget):
    """A target with a batched read (like QBO's ``Id IN (…)`` query)."""

    batch_calls: int = 0

    def fetch_invoices(
        self, external_ids: Sequence[str]
    ) -> Mapping[str, InvoiceRef | ConnectorError]:
        self.batch_calls += 1
        return {
            external_id: self.invoices.get(external_id) or not_found(external_id)
            for external_id in external_ids
        }


def not_found(message: str = "Object Not Found") -> ConnectorError:
    return ConnectorError(
        system="quickbooks", error_class=ErrorClass.NOT_FOUND, code="610", message=message
    )


def transient(message: str = "timeout") -> ConnectorError:
    return ConnectorError(
        system="quickbooks", error_class=ErrorClass.TRANSIENT, code="TIMEOUT", message=message
    )


def invalid(message: str = "Invalid Reference Id: item inactive") -> ConnectorError:
    return ConnectorError(
        system="quickbooks", error_class=ErrorClass.INVALID_DATA, code="610", message=message
    )


def auth() -> ConnectorError:
    return ConnectorError(
        system="quickbooks",
        error_class=ErrorClass.AUTH,
        code="invalid_grant",
        message="reconnect with billsync auth quickbooks",
    )


@dataclass
class FakeFeed:
    """A provider feed: events to poll (with cursors) and notifications to resolve, and
    the target's money (``read_invoice_money``): each invoice of ``target`` with the
    facts in ``facts`` (the target's truth; events are only hints)."""

    provider: str = "quickbooks"
    events: list[PaymentEvent] = field(default_factory=list)
    resolved: dict[str, list[PaymentEvent]] = field(default_factory=dict)
    polls: int = 0
    target: FakeTarget | None = None
    facts: dict[str, list[MoneyFact]] = field(default_factory=dict)
    tax: dict[str, Decimal] = field(default_factory=dict)
    money_reads: list[list[str]] = field(default_factory=list)
    read_errors: dict[str, ConnectorError] = field(default_factory=dict)
    # the target's own figures (balance, amount paid) and due dates, per invoice
    reported: dict[str, tuple[Decimal | None, Decimal | None]] = field(default_factory=dict)
    due: dict[str, date] = field(default_factory=dict)

    def read_invoice_money(self, external_ids: Sequence[str]) -> Mapping[str, InvoiceMoney]:
        self.money_reads.append(list(external_ids))
        found: dict[str, InvoiceMoney] = {}
        for external_id in external_ids:
            if external_id in self.read_errors:
                raise self.read_errors[external_id]
            ref = self.target.invoices.get(external_id) if self.target else None
            if ref is None:
                continue
            tax = self.tax.get(external_id, Decimal(0))
            found[external_id] = InvoiceMoney(
                target=ref.target,
                external_id=external_id,
                currency=ref.currency,
                status=ref.status,
                net=ref.total - tax,
                tax=tax,
                total=ref.total,
                facts=tuple(self.facts.get(external_id, ())),
                reported_balance=self.reported.get(external_id, (None, None))[0],
                reported_paid=self.reported.get(external_id, (None, None))[1],
                due_date=self.due.get(external_id),
                deal_id=ref.deal_id,
                number=ref.number,
            )
        return found

    def add_fact(
        self,
        invoice: str,
        fact_id: str,
        amount: str,
        kind: str = "payment",
        state: str = "applied",
        n: int = 0,
    ) -> PaymentEvent:
        """Record a fact in the target, replacing one with the same id on any invoice,
        and return the hint a feed would give for it."""
        for facts in self.facts.values():
            facts[:] = [f for f in facts if f.fact_id != fact_id]
        self.facts.setdefault(invoice, []).append(
            MoneyFact(
                fact_id=fact_id,
                kind=kind,
                state=state,
                amount=Decimal(amount),
                occurred_at=datetime(2026, 11, 20, 10, n, tzinfo=UTC),
            )
        )
        return payment(invoice, amount, pid=fact_id, n=n)

    def remove_fact(self, fact_id: str) -> PaymentEvent:
        """The target dropped the object's facts (payment deleted); the hint names only
        the object's id."""
        for facts in self.facts.values():
            facts[:] = [f for f in facts if f.fact_id.split(":", 1)[0] != fact_id]
        return payment(None, "0", kind="voided", pid=fact_id)

    def events_since(self, since: Cursor | None) -> Iterator[Checkpointed[PaymentEvent]]:
        self.polls += 1
        for index, event in enumerate(self.events):
            cursor = f"{index:08d}"
            if since is None or cursor > since:
                yield Checkpointed(event, cursor)

    def resolve(self, notification: WebhookNotification) -> Sequence[PaymentEvent]:
        return self.resolved.get(notification.event_id, [])


@dataclass
class ListingSource(FakeSource):
    """A source that can list won deal ids (``ListsWonDeals``); ``unread`` are won deals
    the pull never returns."""

    unread: list[str] = field(default_factory=list)
    listed: int = 0

    lost: dict[str, str] = field(default_factory=dict)  # deal id -> its stage now

    def won_deal_ids(self, up_to: Cursor) -> Iterator[str]:
        self.listed += 1
        for deal in self.deals:
            if deal.id not in self.lost and f"{deal.revision.isoformat()}|{deal.id}" <= up_to:
                yield deal.id
        yield from self.unread

    def not_won(self, deal_ids: Sequence[str]) -> Mapping[str, str]:
        return {i: self.lost[i] for i in deal_ids if i in self.lost}


def payment(
    invoice: str | None, amount: str, kind: str = "paid", pid: str | None = None, n: int = 0
) -> PaymentEvent:
    return PaymentEvent(
        provider="quickbooks",
        event_id=f"evt{n}-{pid or invoice}-{kind}",
        invoice_external_id=invoice,
        kind=kind,
        amount=Decimal(amount),
        currency="USD",
        occurred_at=datetime(2026, 11, 20, 10, n, tzinfo=UTC),
        provider_payment_id=pid,
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def build(ledger: Ledger, source: FakeSource, target: FakeTarget, clock: Clock) -> Engine:
    mapping = load_mappings()
    planner = Planner(
        mapping=mapping,
        catalogs={"quickbooks": target.catalog()},
        default_target="quickbooks",
        idempotency_key=invoice_key,
    )
    return Engine(
        ledger=ledger,
        source=source,
        targets={"quickbooks": target},
        feeds={},
        planner=planner,
        mapping=mapping,
        policy=RetryPolicy(base_s=1, cap_s=60, max_attempts=3),
        now=clock,
        batch_size=3,
    )
