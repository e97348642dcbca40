from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from billsync.core.canonical import (
    Customer,
    Deal,
    DealWriteBack,
    InvoiceDraft,
    InvoiceMoney,
    InvoiceRef,
    PaymentEvent,
    WebhookNotification,
)
from billsync.core.catalog import MappingOnlyCatalog
from billsync.core.protocols import (
    Checkpointed,
    ConnectorError,
    Cursor,
    DealSource,
    ErrorClass,
    InvoiceTarget,
    PaymentFeed,
    ReadRejection,
    WebhookRejected,
    WebhookRejectReason,
    WebhookVerifier,
)

SECRET = "sk_live_do_not_print"  # a canary: must never appear in str() or repr()


def test_error_classes_are_exactly_the_six():
    assert [c.value for c in ErrorClass] == [
        "transient",
        "rate_limited",
        "auth",
        "conflict",
        "invalid_data",
        "not_found",
    ]


@pytest.mark.parametrize(
    ("error_class", "retryable"),
    [
        ("transient", True),
        ("rate_limited", True),
        ("auth", False),
        ("conflict", False),  # needs refetch + reapply, not the same request again
        ("invalid_data", False),
        ("not_found", False),
    ],
)
def test_is_retryable(error_class, retryable):
    err = ConnectorError(system="stripe", error_class=error_class, message="m")
    assert err.is_retryable is retryable
    assert err.error_class is ErrorClass(error_class)


def test_str_and_repr_show_only_the_given_fields():
    try:
        try:
            raise RuntimeError(f"HTTP 400 for url https://api.example/v1?key={SECRET}")
        except RuntimeError:
            raise ConnectorError(
                system="quickbooks",
                error_class=ErrorClass.INVALID_DATA,
                code="6240",
                message="Customer name 'Acme' is already used; rename or link it",
                deal_id="006A",
                field="Customer.DisplayName",
            ) from None
    except ConnectorError as err:
        text = str(err)
        assert text == (
            "[quickbooks invalid_data 6240] Customer name 'Acme' is already used; rename or "
            "link it (deal 006A; field Customer.DisplayName)"
        )
        assert SECRET not in text and SECRET not in repr(err)
        assert repr(err) == (
            "ConnectorError(system='quickbooks', error_class='invalid_data', "
            "message=\"Customer name 'Acme' is already used; rename or link it\", "
            "code='6240', deal_id='006A', field='Customer.DisplayName')"
        )
        assert err.__cause__ is None and err.__suppress_context__


def test_retry_after_is_a_timedelta():
    err = ConnectorError(
        system="quickbooks",
        error_class="rate_limited",
        code="3001",
        message="throttled",
        retry_after=timedelta(seconds=60),
    )
    assert "retry after 60s" in str(err)
    assert err.retry_after == timedelta(seconds=60)
    bads: tuple[Any, ...] = (60, 60.0, timedelta(seconds=-1))
    for bad in bads:
        with pytest.raises(ValueError, match="retry_after"):
            ConnectorError(system="s", error_class="rate_limited", message="m", retry_after=bad)


def test_construction_is_validated():
    with pytest.raises(ValueError, match="message"):
        ConnectorError(system="s", error_class="auth", message="")
    with pytest.raises(ValueError):
        ConnectorError(system="s", error_class="teapot", message="m")


def test_with_context_and_pickle_keep_every_field():
    err = ConnectorError(
        system="stripe",
        error_class="not_found",
        code="resource_missing",
        message="no such invoice",
        retry_after=timedelta(seconds=1),
    )
    named = err.with_context(deal_id="006A", field="invoice")
    assert (named.deal_id, named.field, named.code, named.system) == (
        "006A",
        "invoice",
        "resource_missing",
        "stripe",
    )
    assert err.deal_id is None  # the original is unchanged
    clone = pickle.loads(pickle.dumps(named))
    assert type(clone) is ConnectorError
    assert repr(clone) == repr(named)


def test_webhook_rejections_map_to_http_statuses():
    expected = {
        WebhookRejectReason.MISSING_SIGNATURE: 401,
        WebhookRejectReason.BAD_SIGNATURE: 401,
        WebhookRejectReason.STALE: 400,
        WebhookRejectReason.MALFORMED: 400,
        WebhookRejectReason.TOO_LARGE: 413,
    }
    for reason, status in expected.items():
        exc = WebhookRejected(reason, "no")
        assert exc.http_status == status
        assert pickle.loads(pickle.dumps(exc)).reason is reason
    overridden = WebhookRejected(WebhookRejectReason.BAD_SIGNATURE, "no", http_status=400)
    assert overridden.http_status == 400
    assert pickle.loads(pickle.dumps(overridden)).http_status == 400


# --- the protocols are small enough to implement in a few lines -------------------

NOW = datetime(2025, 3, 1, tzinfo=UTC)


class FakeSource:
    system = "fake_crm"

    def __init__(self, deals: list[Deal]) -> None:
        self.deals = deals
        self.written: list[DealWriteBack] = []

    def pull(self, since: Cursor | None) -> Iterator[Checkpointed[Deal | ReadRejection]]:
        for d in self.deals:
            cursor = f"{d.revision.isoformat()}|{d.id}"
            if since is None or cursor > since:
                yield Checkpointed(d, cursor)

    def write_back(
        self, updates: Sequence[DealWriteBack], errors: Mapping[str, str] | None = None
    ) -> Mapping[str, ConnectorError]:
        self.written.extend(updates)
        return {}

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FakeTarget:
    target = "fake_books"

    def __init__(self) -> None:
        self.invoices: dict[str, InvoiceRef] = {}
        self.keys: dict[str, str] = {}

    def ensure_customer(self, customer: Customer) -> Customer:
        return customer.model_copy(update={"external_id": f"c-{customer.account_id}"})

    def find_invoices(self, deal_id: str, *, reference: str | None = None) -> Sequence[InvoiceRef]:
        return [i for i in self.invoices.values() if i.deal_id == deal_id]

    def create_invoices(self, drafts: Sequence[InvoiceDraft]) -> dict[str, object]:
        return {draft.deal_id: self.create_invoice(draft) for draft in drafts}

    def catalog(self) -> MappingOnlyCatalog:
        return MappingOnlyCatalog(self.target)

    def create_invoice(self, draft: InvoiceDraft) -> InvoiceRef:
        if draft.idempotency_key in self.keys:
            return self.invoices[self.keys[draft.idempotency_key]]
        ref = InvoiceRef(
            target=self.target,
            external_id=f"inv{len(self.invoices)}",
            deal_id=draft.deal_id,
            currency=draft.currency,
            total=draft.total,
            status="open",
        )
        self.invoices[ref.external_id] = ref
        self.keys[draft.idempotency_key] = ref.external_id
        return ref

    def fetch_invoice(self, external_id: str) -> InvoiceRef:
        try:
            return self.invoices[external_id]
        except KeyError:
            raise ConnectorError(
                system=self.target,
                error_class="not_found",
                message=f"invoice {external_id} not found",
            ) from None


class FakeFeed:
    provider = "fake_books"

    def events_since(self, since: Cursor | None) -> Iterator[Checkpointed[PaymentEvent]]:
        yield from ()

    def resolve(self, notification: WebhookNotification) -> Sequence[PaymentEvent]:
        return []

    def read_invoice_money(self, external_ids: Sequence[str]) -> Mapping[str, InvoiceMoney]:
        return {}


class FakeVerifier:
    provider = "fake_books"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Sequence[WebhookNotification]:
        if {k.lower(): v for k, v in headers.items()}.get("x-sig") != "ok":
            raise WebhookRejected(WebhookRejectReason.BAD_SIGNATURE, "signature mismatch")
        return [
            WebhookNotification(
                provider=self.provider,
                event_id="e1",
                event_type="t",
                payload=body.decode(),
                received_at=NOW,
            )
        ]


def _deal(deal_id: str, minute: int) -> Deal:
    return Deal(
        id=deal_id,
        account={"id": "001", "name": "Acme"},
        name="d",
        close_date=date(2025, 3, 1),
        currency="USD",
        amount="10.00",
        revision=NOW + timedelta(minutes=minute),
    )


def test_fakes_satisfy_the_protocols():
    # Static conformance is checked by mypy through these annotations.
    source: DealSource = FakeSource([])
    target: InvoiceTarget = FakeTarget()
    feed: PaymentFeed = FakeFeed()
    verifier: WebhookVerifier = FakeVerifier()
    for obj, proto in (
        (source, DealSource),
        (target, InvoiceTarget),
        (feed, PaymentFeed),
        (verifier, WebhookVerifier),
    ):
        assert isinstance(obj, proto)
    assert not isinstance(object(), InvoiceTarget)


def _deal_id(item: Deal | ReadRejection) -> str:
    return item.id if isinstance(item, Deal) else item.deal_id


def test_cursors_come_with_items_so_the_watermark_follows_recorded_work():
    source = FakeSource([_deal("006A", 1), _deal("006B", 2)])
    pulled = list(source.pull(None))
    assert [_deal_id(p.item) for p in pulled] == ["006A", "006B"]
    # Storing the first item's cursor replays only what came after it.
    assert [_deal_id(p.item) for p in source.pull(pulled[0].cursor)] == ["006B"]


def test_verifier_contract_rejects_with_a_status():
    verifier = FakeVerifier()
    assert verifier.verify(b"{}", {"X-Sig": "ok"})[0].event_id == "e1"
    with pytest.raises(WebhookRejected) as info:
        verifier.verify(b"{}", {"X-Sig": "forged"})
    assert info.value.http_status == 401
