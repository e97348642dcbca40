"""Contract: the Stripe invoice target against the sandbox (real stripe-python 16).

Exactly once through crashes at every step, replays, key conflicts, dropped connections
and expired keys; call budgets measured with the sandbox's call counter."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests

from billsync.connectors.stripe import StripeTarget, connect
from billsync.core.canonical import InvoiceStatus
from billsync.core.protocols import ConnectorError, ErrorClass
from tests.connectors.stripe.support import ConnectorEnv, customer, draft, eight_lines

DAY = 86400


class Crash(Exception):
    """The process dies here (nothing after this point happens)."""


def crash_once(monkeypatch: pytest.MonkeyPatch, target: StripeTarget, step: str) -> None:
    real = getattr(target, step)
    state = {"crashed": False}

    def dying(*args: Any, **kwargs: Any) -> Any:
        if not state["crashed"]:
            state["crashed"] = True
            raise Crash(step)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, step, dying)


def linked(env: ConnectorEnv, target: StripeTarget, account: str = "001ACME") -> Any:
    found = target.ensure_customer(customer(account))
    env.clear_calls()
    return found


def test_eight_lines_cost_four_calls_once_the_customer_is_known(env: ConnectorEnv) -> None:
    target = env.connect().target
    known = linked(env, target)
    planned = draft(eight_lines(), customer_=known, memo="Renewal 2027", po_number="PO-42")
    ref = target.create_invoice(planned)
    assert env.calls() == {
        "POST /v1/invoices": 1,
        "POST /v1/invoices/{id}/add_lines": 1,
        "POST /v1/invoices/{id}/finalize": 1,
        "POST /v1/invoices/{id}/send": 1,
    }
    assert ref.status is InvoiceStatus.OPEN and ref.total == planned.total == Decimal("18377.03")
    assert ref.deal_id == "006DEAL1" and ref.number and ref.url and ref.balance == ref.total
    [inv] = env.invoices()
    assert inv["metadata"] == {
        "billsync_deal_id": "006DEAL1",
        "billsync_idempotency_key": planned.idempotency_key,
    }
    assert (inv["collection_method"], inv["auto_advance"], inv["description"]) == (
        "send_invoice",
        False,
        "Renewal 2027",
    )
    assert inv["custom_fields"] == [{"name": "PO number", "value": "PO-42"}]
    assert [line["metadata"]["billsync_line"] for line in inv["lines"]["data"]] == [
        str(i) for i in range(8)
    ]
    assert target.take_discrepancies() == []


def test_charge_automatically_is_finalized_for_collection_without_send(env: ConnectorEnv) -> None:
    target = env.connect().target
    known = linked(env, target)
    ref = target.create_invoice(draft(customer_=known, days_until_due=None))
    assert ref.status is InvoiceStatus.OPEN
    assert env.calls() == {
        "POST /v1/invoices": 1,
        "POST /v1/invoices/{id}/add_lines": 1,
        "POST /v1/invoices/{id}/finalize": 1,
    }
    [inv] = env.invoices()
    assert inv["collection_method"] == "charge_automatically" and inv["auto_advance"] is True


def test_customer_resolution_link_email_search_create(env: ConnectorEnv) -> None:
    target = env.connect().target
    # Same email, but someone else's record: never adopted.
    stranger = requests.post(
        f"{env.info['stripe_url']}/v1/customers",
        data={"email": "ap@acme.example", "name": "Not Acme"},
        headers={"Authorization": f"Bearer {env.info['stripe_api_key']}"},
        timeout=10,
    ).json()
    env.clear_calls()
    created = target.ensure_customer(customer())
    assert created.external_id and created.external_id != stranger["id"]
    assert env.calls() == {
        "GET /v1/customers": 1,
        "GET /v1/customers/search": 1,
        "POST /v1/customers": 1,
    }
    [mine] = [c for c in env.state()["customers"] if c["id"] == created.external_id]
    assert mine["metadata"] == {"billsync_account_id": "001ACME"}
    assert mine["address"]["country"] == "DE" and mine["name"] == "Acme GmbH"
    env.clear_calls()
    assert target.ensure_customer(customer()).external_id == created.external_id
    assert env.calls() == {"GET /v1/customers": 1}  # found by email, no search, no create
    env.clear_calls()
    assert target.ensure_customer(created) == created and env.calls() == {}  # ledger link


def test_customer_without_email_is_found_by_search_or_replayed(env: ConnectorEnv) -> None:
    target = env.connect().target
    first = target.ensure_customer(customer("001NOMAIL", email=None))
    # Within the search lag the create replays under the account's key: no duplicate.
    again = target.ensure_customer(customer("001NOMAIL", email=None))
    assert again.external_id == first.external_id
    env.advance(6)  # search catches up (sandbox lag 5 s)
    env.clear_calls()
    third = target.ensure_customer(customer("001NOMAIL", email=None, name="Renamed"))
    assert third.external_id == first.external_id
    assert env.calls() == {"GET /v1/customers/search": 1}
    assert len(env.state()["customers"]) == 1


def test_customer_renamed_within_the_search_lag(env: ConnectorEnv) -> None:
    """The account's key is taken by other details and search cannot see the first
    customer yet: a second customer is the price (no money involved); afterwards the
    oldest is used, consistently."""
    target = env.connect().target
    first = target.ensure_customer(customer("001LAG", email=None))
    second = target.ensure_customer(customer("001LAG", email=None, name="Other name"))
    assert second.external_id != first.external_id
    env.advance(6)
    chosen = {target.ensure_customer(customer("001LAG", email=None)).external_id for _ in range(3)}
    assert len(chosen) == 1 and chosen <= {first.external_id, second.external_id}


def test_a_deleted_customer_is_not_revived_by_the_replayed_create(env: ConnectorEnv) -> None:
    target = env.connect().target
    gone = target.ensure_customer(customer())
    env.admin("POST", f"stripe/customers/{gone.external_id}/delete")
    again = target.ensure_customer(customer())  # same details: the create key replays
    assert again.external_id and again.external_id != gone.external_id
    assert target.ensure_customer(customer()).external_id == again.external_id


def test_replay_after_success_returns_the_same_invoice(env: ConnectorEnv) -> None:
    target = env.connect().target
    planned = draft(eight_lines(), customer_=linked(env, target))
    first = target.create_invoice(planned)
    env.clear_calls()
    second = env.connect().target.create_invoice(planned)  # another process, same draft
    assert second.external_id == first.external_id and len(env.invoices()) == 1
    assert env.calls() == {
        "POST /v1/invoices": 1,  # replayed
        "GET /v1/invoices/{id}": 1,  # read afresh: it is open
        "POST /v1/invoices/{id}/send": 1,  # replayed: no second email
    }
    log = env.runner.sandbox.systems["stripe"].state.events  # type: ignore[attr-defined]
    assert sum(1 for e in log.by_id.values() if e.type == "invoice.sent") == 1


def test_conflicting_retry_finds_and_resumes_the_invoice(env: ConnectorEnv) -> None:
    target = env.connect().target
    known = linked(env, target)
    first = target.create_invoice(draft(customer_=known, memo="old memo"))
    # Same deal revision (same key) but the mapping now gives another memo.
    again = env.connect().target.create_invoice(draft(customer_=known, memo="new memo"))
    assert again.external_id == first.external_id and len(env.invoices()) == 1


def test_conflict_with_no_invoice_is_invalid_data_not_a_second_create(env: ConnectorEnv) -> None:
    target = env.connect().target
    gone = linked(env, target)
    env.admin("POST", f"stripe/customers/{gone.external_id}/delete")
    with pytest.raises(ConnectorError) as deleted:
        target.create_invoice(draft(customer_=gone))
    assert deleted.value.error_class is ErrorClass.NOT_FOUND
    assert deleted.value.code == "customer_deleted" and deleted.value.deal_id == "006DEAL1"
    assert gone.external_id in deleted.value.message and "001ACME" in deleted.value.message
    # The operator clears the link; a new customer, same deal key, other parameters.
    fresh = target.ensure_customer(customer(email="new@acme.example"))
    with pytest.raises(ConnectorError) as conflict:
        target.create_invoice(draft(customer_=fresh))
    assert conflict.value.error_class is ErrorClass.INVALID_DATA
    assert conflict.value.code == "idempotency_error" and env.invoices() == []
    env.advance(DAY + 60)  # Stripe forgets the key
    assert target.create_invoice(draft(customer_=fresh)).status is InvoiceStatus.OPEN


@pytest.mark.parametrize(
    "via", ["replay", "lookup_by_customer", "lookup_by_search", "lookup_by_search_batch"]
)
def test_crash_after_create_before_lines_resumes_the_draft(
    env: ConnectorEnv, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    target = env.connect().target
    known = linked(env, target)
    planned = draft(eight_lines(), customer_=known)
    crash_once(monkeypatch, target, "_add_lines")
    with pytest.raises(Crash):
        target.create_invoice(planned)
    [inv] = env.invoices()
    assert inv["status"] == "draft" and inv["lines"]["data"] == []
    resumed = env.connect().target
    found = []
    if via != "replay":
        env.advance(DAY + 60)  # the create key has expired: only the lookup can help
        found = resumed.find_invoices(
            "006DEAL1", **({"customer_id": known.external_id} if via.endswith("customer") else {})
        )
        assert [(r.external_id, r.status) for r in found] == [(inv["id"], InvoiceStatus.DRAFT)]
    env.clear_calls()
    if via.endswith("batch"):
        [outcome] = resumed.create_invoices([planned], found={"006DEAL1": found}).values()
        assert not isinstance(outcome, ConnectorError)
        ref = outcome
    else:
        ref = resumed.create_invoice(planned, found=found)  # the lookup's result, passed on
    assert ref.external_id == inv["id"] and ref.status is InvoiceStatus.OPEN
    assert ref.total == planned.total and len(env.invoices()) == 1
    calls = env.calls()
    assert calls.get("POST /v1/invoices/{id}/add_lines") == 1
    assert calls.get("POST /v1/invoices", 0) == (1 if via == "replay" else 0)


@pytest.mark.parametrize("via", ["replay", "lookup"])
def test_crash_after_finalize_adopts_and_sends(
    env: ConnectorEnv, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    target = env.connect().target
    known = linked(env, target)
    planned = draft(customer_=known)
    crash_once(monkeypatch, target, "_send")
    with pytest.raises(Crash):
        target.create_invoice(planned)
    [inv] = env.invoices()
    assert inv["status"] == "open"
    resumed = env.connect().target
    found = []
    if via == "lookup":
        env.advance(DAY + 60)
        found = resumed.find_invoices("006DEAL1")
        assert [r.status for r in found] == [InvoiceStatus.OPEN]
    env.clear_calls()
    ref = resumed.create_invoice(planned, found=found)
    assert ref.external_id == inv["id"] and len(env.invoices()) == 1
    calls = env.calls()
    assert "POST /v1/invoices/{id}/finalize" not in calls
    assert calls["POST /v1/invoices/{id}/send"] == 1


def test_lines_added_in_chunks_resume_after_a_crash_between_chunks(
    env: ConnectorEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = env.connect(lines_per_call=3).target
    known = linked(env, target)
    planned = draft(eight_lines(), customer_=known)
    real = target._api.call
    seen = {"add_lines": 0}

    def call(operation: str, *args: Any, **kwargs: Any) -> Any:
        if operation == "invoice add lines":
            seen["add_lines"] += 1
            if seen["add_lines"] == 3:
                raise Crash("between chunks")
        return real(operation, *args, **kwargs)

    monkeypatch.setattr(target._api, "call", call)
    with pytest.raises(Crash):
        target.create_invoice(planned)
    assert len(env.invoices()[0]["lines"]["data"]) == 6
    env.clear_calls()
    ref = env.connect(lines_per_call=3).target.create_invoice(planned)
    [inv] = env.invoices()
    lines = env.state()["invoiceitems"]
    assert sorted(int(i["metadata"]["billsync_line"]) for i in lines) == list(range(8))
    assert ref.total == planned.total and inv["status"] == "open"
    assert env.calls()["POST /v1/invoices/{id}/add_lines"] == 1  # only the missing chunk


def test_a_draft_holding_other_lines_is_not_finalized(
    env: ConnectorEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = env.connect().target
    known = linked(env, target)
    crash_once(monkeypatch, target, "_finalize")
    with pytest.raises(Crash):
        target.create_invoice(draft([("1", "100.00", None)], customer_=known))
    changed = draft([("1", "120.00", None)], customer_=known)  # same revision, other price
    with pytest.raises(ConnectorError) as caught:
        env.connect().target.create_invoice(changed)
    assert caught.value.code == "draft_lines_differ"
    assert caught.value.error_class is ErrorClass.INVALID_DATA
    assert env.invoices()[0]["status"] == "draft"


def test_dropped_connection_after_processing_then_retry_gives_one_invoice(
    env: ConnectorEnv,
) -> None:
    target = env.connect(retry_attempts=2).target
    known = linked(env, target)
    planned = draft(eight_lines(), customer_=known)
    env.faults(drop_rate=1.0, drop_phase="after")
    with pytest.raises(ConnectorError) as caught:
        target.create_invoice(planned)
    assert caught.value.error_class is ErrorClass.TRANSIENT
    assert env.calls() == {"POST /v1/invoices": 2}  # processed, answer lost, retried
    env.faults()
    ref = env.connect().target.create_invoice(planned)
    assert [i["id"] for i in env.invoices()] == [ref.external_id]
    assert ref.status is InvoiceStatus.OPEN and ref.total == planned.total


def test_a_drop_is_retried_in_call_with_the_same_key(env: ConnectorEnv) -> None:
    """One dropped answer on add_lines: the in-call retry replays it, nothing doubles."""
    settings = env.settings()
    clear_after_first = {"armed": True}
    admin = env.info["admin_url"]

    class DropOnce(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *a: Any, **kw: Any) -> Any:
            target_call = str(url).endswith("/add_lines")
            if target_call and clear_after_first["armed"]:
                requests.post(
                    f"{admin}/_sandbox/faults",
                    json={"systems": ["stripe"], "drop_rate": 1.0, "drop_phase": "after"},
                    timeout=5,
                )
            try:
                return super().request(method, url, *a, **kw)
            finally:
                if target_call and clear_after_first["armed"]:
                    clear_after_first["armed"] = False
                    requests.post(f"{admin}/_sandbox/faults", json={}, timeout=5)

    connector = connect(settings, session=DropOnce(), sleep=env.sleeps.append, now=env.now)
    known = linked(env, connector.target)
    ref = connector.target.create_invoice(draft(eight_lines(), customer_=known))
    assert env.calls()["POST /v1/invoices/{id}/add_lines"] == 2 and len(env.sleeps) == 1
    assert len(env.state()["invoiceitems"]) == 8 and ref.total == Decimal("18377.03")


@pytest.mark.parametrize(
    ("currency", "lines", "expected"),
    [
        ("JPY", [("3", "1500", None), ("2.5", "999", None), ("1", "10000", "15")], "15498"),
        ("KWD", [("2", "12.340", None), ("1.5", "4.000", None), ("4", "2.500", "10")], "39.680"),
    ],
)
def test_zero_and_three_decimal_currencies_to_the_minor_unit(
    env: ConnectorEnv, currency: str, lines: list[Any], expected: str
) -> None:
    target = env.connect().target
    planned = draft(lines, currency=currency, customer_=linked(env, target))
    assert planned.total == Decimal(expected)
    ref = target.create_invoice(planned)
    assert ref.total == planned.total and ref.currency == currency
    [inv] = env.invoices()
    assert inv["currency"] == currency.lower()
    assert [line["amount"] for line in inv["lines"]["data"]] == [
        int(line.amount.scaleb(0 if currency == "JPY" else 3)) for line in planned.lines
    ]


def test_an_amount_stripe_cannot_hold_fails_before_any_call(env: ConnectorEnv) -> None:
    target = env.connect().target
    known = linked(env, target)
    planned = draft([("1", "5.125", None)], currency="KWD", customer_=known)
    with pytest.raises(ConnectorError) as caught:
        target.create_invoice(planned)
    assert caught.value.error_class is ErrorClass.INVALID_DATA
    assert caught.value.field == "lines[0].amount" and "KWD" in caught.value.message
    assert env.calls() == {}


def test_a_voided_invoice_is_not_reissued_under_the_same_revision(env: ConnectorEnv) -> None:
    target = env.connect().target
    planned = draft(customer_=linked(env, target))
    ref = target.create_invoice(planned)
    env.admin("POST", f"stripe/invoices/{ref.external_id}/void")
    resumed = env.connect().target
    found = resumed.find_invoices("006DEAL1")
    assert [r.status for r in found] == [InvoiceStatus.VOID]
    for given in ([], found):  # the create key replays it, or the lookup found it
        with pytest.raises(ConnectorError) as caught:
            resumed.create_invoice(planned, found=given)
        assert caught.value.code == "invoice_voided" and len(env.invoices()) == 1


def test_find_fetch_and_batch(env: ConnectorEnv) -> None:
    target = env.connect().target
    known = linked(env, target)
    good = draft(customer_=known, deal_id="006A")
    bad = draft([("1", "1.005", None)], currency="KWD", customer_=known, deal_id="006B")
    results = target.create_invoices([good, bad])
    ok, failed = results["006A"], results["006B"]
    assert not isinstance(ok, ConnectorError) and ok.status is InvoiceStatus.OPEN
    assert isinstance(failed, ConnectorError) and failed.deal_id == "006B"
    env.clear_calls()
    found = target.find_invoices("006A", customer_id=known.external_id)
    assert found == [target.fetch_invoice(ok.external_id)]
    assert env.calls() == {"GET /v1/invoices": 1, "GET /v1/invoices/{id}": 1}  # customer known
    with pytest.raises(ConnectorError) as missing:
        target.fetch_invoice("in_doesnotexist")
    assert missing.value.error_class is ErrorClass.NOT_FOUND


def test_a_refused_key_stops_the_batch(env: ConnectorEnv) -> None:
    target = env.connect(api_key="sk_test_wrongwrongwrong1234").target
    drafts = [draft(customer_=customer(), deal_id=f"006{i}") for i in range(3)]
    results = target.create_invoices(drafts)
    errors = list(results.values())
    assert all(isinstance(e, ConnectorError) and e.error_class is ErrorClass.AUTH for e in errors)
    assert env.calls() == {"GET /v1/customers": 1}
    assert "wrongwrong" not in str(errors[0]) and "wrongwrong" not in repr(errors[0])


def test_the_connector_meets_the_engine_protocols(env: ConnectorEnv) -> None:
    from billsync.core.protocols import InvoiceTarget, PaymentFeed, WebhookVerifier

    connector = env.connect()
    assert isinstance(connector.target, InvoiceTarget)
    assert isinstance(connector.feed, PaymentFeed)
    assert isinstance(connector.webhooks, WebhookVerifier)
    assert (connector.target.target, connector.feed.provider) == ("stripe", "stripe")
