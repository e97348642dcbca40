"""Customer resolution against the sandbox: the identity rule (name and one more
identifier, never email alone, never another account's customer), create, 6240,
inactive, calls."""

from __future__ import annotations

from typing import Any

import pytest

from billsync.connectors.quickbooks.customers import CustomerResolver
from billsync.core.canonical import Address
from billsync.core.customer_identity import Resolved, no_owners
from billsync.core.protocols import ConnectorError, ErrorClass
from tests.connectors.quickbooks.conftest import Qbo, customer

EMAIL_1 = {"PrimaryEmailAddr": {"Address": "ap1@customer.example"}}


def people(qbo: Qbo, entity: str) -> list[dict[str, Any]]:
    return list(qbo.state()[entity])


def test_exact_display_name_match_with_quotes_and_backslashes(qbo: Qbo) -> None:
    names = ["O'Brien & Sons", "Back\\slash Co", "Café Lumière"]
    qbo.seed(
        Customer=[
            {"DisplayName": n, "PrimaryEmailAddr": {"Address": f"ap{i}@customer.example"}}
            for i, n in enumerate(names, start=1)
        ]
    )
    connector = qbo.connector()
    connector.catalog().preferences()
    qbo.reset_calls()
    wanted = [customer(i, name=n) for i, n in enumerate(names, start=1)]
    found = connector.ensure_customers(wanted)
    assert all(not isinstance(c, ConnectorError) for c in found.values()), found
    ids = {c["DisplayName"]: c["Id"] for c in people(qbo, "Customer")}
    for want in wanted:
        got = found[want.account_id]
        assert not isinstance(got, ConnectorError)
        assert got.external_id == ids[want.name] and got.name == want.name
    assert qbo.calls() == {"POST query": 1}  # one IN (...) query, nothing created
    assert connector.customers.outcomes[wanted[0].account_id] == "matched"


def test_linked_customer_costs_no_call(qbo: Qbo) -> None:
    connector = qbo.connector()
    qbo.reset_calls()
    linked = customer(1, external_id="58")
    assert connector.ensure_customer(linked) is linked
    assert qbo.calls() == {}


def test_an_email_alone_never_adopts(qbo: Qbo) -> None:
    """Accounts share AP mailboxes: same email, other name is another company."""
    qbo.seed(
        Customer=[
            {"DisplayName": "Globex Inc", "PrimaryEmailAddr": {"Address": "ap@globex.example"}}
        ]
    )
    got = qbo.connector().ensure_customer(
        customer(1, name="Globex Corporation", email="ap@globex.example")
    )
    assert got.name == "Globex Corporation"
    assert len(people(qbo, "Customer")) == 2


def test_without_email_matching_another_identifier_must_agree(qbo: Qbo) -> None:
    qbo.seed(
        Customer=[
            {
                "DisplayName": "Globex Corporation",
                "PrimaryEmailAddr": {"Address": "ap@globex.example"},
                "BillAddr": {"City": "Springfield", "PostalCode": "62701"},
            }
        ]
    )
    connector = qbo.connector(match_customer_by_email=False)
    same_email = customer(1, name="Globex Corporation", email="ap@globex.example")
    with pytest.raises(ConnectorError) as caught:
        connector.ensure_customer(same_email)
    assert caught.value.code == "CUSTOMER_AMBIGUOUS"
    postal = Address(city="Springfield", postal_code="62701")
    found = connector.customers.resolve_many(
        [customer(2, name="Globex Corporation", billing_address=postal)], no_owners
    )
    [resolved] = found.values()
    assert isinstance(resolved, Resolved)
    assert resolved.method == "matched"
    assert resolved.evidence == {"name": "Globex Corporation", "postal_code": "62701"}


def test_create_carries_address_email_and_a_note_naming_the_account(qbo: Qbo) -> None:
    want = customer(
        7,
        name="Acme: West",
        billing_address=Address(
            line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US"
        ),
    )
    got = qbo.connector().ensure_customer(want)
    assert got.name == "Acme- West"  # ':' is forbidden in DisplayName (2040)
    [record] = people(qbo, "Customer")
    assert record["Id"] == got.external_id
    assert record["PrimaryEmailAddr"]["Address"] == want.email
    assert record["BillAddr"]["CountrySubDivisionCode"] == "TX"
    assert want.account_id in record["Notes"]


@pytest.mark.parametrize("entity", ["Vendor", "Employee"])
def test_name_taken_by_a_vendor_or_employee_gets_the_account_number(qbo: Qbo, entity: str) -> None:
    qbo.seed(**{entity: [{"DisplayName": "Acme"}]})
    connector = qbo.connector()
    got = connector.ensure_customer(customer(1, name="Acme", account_number="AC-00001"))
    assert got.name == "Acme (AC-00001)"
    assert connector.customers.outcomes[got.account_id] == "created_renamed"
    assert [c["DisplayName"] for c in people(qbo, "Customer")] == ["Acme (AC-00001)"]


def test_without_an_account_number_the_id_suffix_is_used(qbo: Qbo) -> None:
    qbo.seed(Vendor=[{"DisplayName": "Acme"}])
    got = qbo.connector().ensure_customer(customer(1, name="Acme", account_number=None))
    assert got.name == f"Acme ({got.account_id[-6:]})"


def test_rename_strategy_fail_reports_6240(qbo: Qbo) -> None:
    qbo.seed(Vendor=[{"DisplayName": "Acme"}])
    with pytest.raises(ConnectorError) as caught:
        qbo.connector(duplicate_name_strategy="fail").ensure_customer(customer(1, name="Acme"))
    assert caught.value.error_class is ErrorClass.INVALID_DATA
    assert caught.value.code == "6240"
    assert "vendor or employee" in caught.value.message


def test_a_customer_created_meanwhile_is_adopted_on_6240(
    qbo: Qbo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run (or our own create whose answer was lost) made it after our lookup."""
    original = CustomerResolver._match_names

    def rival_creates(self: CustomerResolver, *args: Any) -> Any:
        notes = f"billsync: Salesforce account {customer(1).account_id}"
        qbo.seed(Customer=[{"DisplayName": "Initech", "Notes": notes}])
        return original(self, *args)

    monkeypatch.setattr(CustomerResolver, "_match_names", rival_creates)
    connector = qbo.connector()
    found = connector.customers.resolve_many([customer(1, name="Initech")], no_owners)
    [resolved] = found.values()
    assert isinstance(resolved, Resolved) and resolved.customer.name == "Initech"
    assert resolved.evidence == {"account_id": customer(1).account_id}
    assert len(people(qbo, "Customer")) == 1
    assert connector.customers.outcomes[customer(1).account_id] == "matched"


def test_an_unrelated_customer_created_meanwhile_is_not_adopted_on_6240(
    qbo: Qbo, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = CustomerResolver._match_names

    def someone_creates(self: CustomerResolver, *args: Any) -> Any:
        qbo.seed(Customer=[{"DisplayName": "Initech"}])
        return original(self, *args)

    monkeypatch.setattr(CustomerResolver, "_match_names", someone_creates)
    with pytest.raises(ConnectorError) as caught:
        qbo.connector().ensure_customer(customer(1, name="Initech"))
    assert caught.value.code == "CUSTOMER_AMBIGUOUS"
    assert len(people(qbo, "Customer")) == 1


def test_inactive_match_is_reported_not_reactivated(qbo: Qbo) -> None:
    qbo.seed(Customer=[{"DisplayName": "Dormant LLC", "Active": False, **EMAIL_1}])
    with pytest.raises(ConnectorError) as caught:
        qbo.connector().ensure_customer(customer(1, name="Dormant LLC"))
    assert caught.value.error_class is ErrorClass.INVALID_DATA
    assert "inactive" in caught.value.message
    assert "reactivate_inactive_customers" in caught.value.message
    [record] = people(qbo, "Customer")
    assert record["Active"] is False


def test_inactive_match_reactivated_when_allowed(qbo: Qbo) -> None:
    qbo.seed(Customer=[{"DisplayName": "Dormant LLC", "Active": False, **EMAIL_1}])
    connector = qbo.connector(reactivate_inactive_customers=True)
    got = connector.ensure_customer(customer(1, name="Dormant LLC"))
    [record] = people(qbo, "Customer")
    assert record["Active"] is True and got.external_id == record["Id"]
    assert connector.customers.outcomes[got.account_id] == "reactivated"


def test_name_match_in_another_currency_is_reported(qbo: Qbo) -> None:
    qbo.seed(Customer=[{"DisplayName": "Euro GmbH", "CurrencyRef": {"value": "EUR"}, **EMAIL_1}])
    with pytest.raises(ConnectorError) as caught:
        qbo.connector().ensure_customer(customer(1, name="Euro GmbH"))
    assert caught.value.code == "CURRENCY_MISMATCH"


def test_forty_new_customers_cost_one_lookup_and_two_batches_then_nothing(qbo: Qbo) -> None:
    connector = qbo.connector()
    connector.catalog().preferences()
    qbo.reset_calls()
    wanted = [customer(n) for n in range(1, 41)]
    found = connector.ensure_customers(wanted)
    assert all(not isinstance(c, ConnectorError) for c in found.values())
    assert qbo.calls() == {"POST query": 1, "POST batch": 2}
    assert len(people(qbo, "Customer")) == 40
    qbo.reset_calls()
    assert connector.ensure_customers(wanted) == found  # cached for the run
    assert qbo.calls() == {}


def test_a_lost_batch_answer_creates_no_duplicate_customers(
    qbo: Qbo, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = CustomerResolver._create

    def creates_lose_their_answers(self: CustomerResolver, *args: Any) -> None:
        drop = {"systems": ["quickbooks"], "drop_rate": 1.0, "drop_phase": "after"}
        qbo.admin("POST", "faults", drop)
        try:
            original(self, *args)
        finally:
            qbo.admin("POST", "faults", {})

    wanted = [customer(1), customer(2)]
    connector = qbo.connector(retry_attempts=2)
    connector.catalog().preferences()  # read before the faults start
    with monkeypatch.context() as patch:
        patch.setattr(CustomerResolver, "_create", creates_lose_their_answers)
        lost = connector.ensure_customers(wanted)
    assert all(isinstance(r, ConnectorError) and r.is_retryable for r in lost.values())
    assert len(people(qbo, "Customer")) == 2  # the batch did create them
    again = qbo.connector(holder="next").ensure_customers(wanted)
    assert all(not isinstance(r, ConnectorError) for r in again.values())
    assert sorted(c["DisplayName"] for c in people(qbo, "Customer")) == ["Customer 1", "Customer 2"]
