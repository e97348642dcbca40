"""Issue 16, customer identity, against the QuickBooks sandbox: one name for two
accounts, a rename onto an unrelated customer, a shared AP mailbox, a match already
linked to another account. Each ends with no wrong-customer adoption."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from billsync.core.canonical import Address, Customer
from billsync.core.customer_identity import Resolved
from billsync.core.protocols import ConnectorError, ErrorClass
from tests.connectors.quickbooks.conftest import Qbo, customer

SPRINGFIELD = Address(line1="1 Main St", city="Springfield", postal_code="62701", country="US")
SHELBYVILLE = Address(line1="9 Elm St", city="Shelbyville", postal_code="62565", country="US")


def owners_from(links: Mapping[str, str]) -> Any:
    """A ledger stand-in: account -> customer id links, read the other way."""

    def owners(ids: Collection[str]) -> dict[str, list[str]]:
        return {
            cid: [account for account, linked in links.items() if linked == cid]
            for cid in ids
            if cid in links.values()
        }

    return owners


def resolve(qbo: Qbo, wanted: list[Customer], links: Mapping[str, str] | None = None) -> Any:
    return qbo.connector().customers.resolve_many(wanted, owners_from(links or {}))


def names(qbo: Qbo) -> list[str]:
    return sorted(c["DisplayName"] for c in qbo.state()["Customer"])


def globex(n: int, address: Address, email: str) -> Customer:
    return customer(n, name="Globex Corporation", billing_address=address, email=email)


def test_a_second_globex_in_another_city_gets_its_own_disambiguated_customer(qbo: Qbo) -> None:
    first = globex(1, SPRINGFIELD, "ap@globex-springfield.example")
    [made] = resolve(qbo, [first]).values()
    assert isinstance(made, Resolved) and made.method == "created"
    links = {first.account_id: str(made.customer.external_id)}
    second = globex(2, SHELBYVILLE, "ap@globex-shelbyville.example")
    [other] = resolve(qbo, [second], links).values()
    assert isinstance(other, Resolved) and other.method == "created"
    assert other.customer.external_id != made.customer.external_id
    assert other.customer.name == "Globex Corporation (AC-00002)"
    assert other.evidence == {
        "display_name": "Globex Corporation (AC-00002)",
        "wanted": "Globex Corporation",
    }
    assert names(qbo) == ["Globex Corporation", "Globex Corporation (AC-00002)"]


def test_two_globex_accounts_in_one_batch_get_two_customers(qbo: Qbo) -> None:
    wanted = [
        globex(1, SPRINGFIELD, "ap@globex-springfield.example"),
        globex(2, SHELBYVILLE, "ap@globex-shelbyville.example"),
    ]
    found = resolve(qbo, wanted)
    ids = {r.customer.external_id for r in found.values() if isinstance(r, Resolved)}
    assert len(ids) == 2
    assert names(qbo) == ["Globex Corporation", "Globex Corporation (AC-00002)"]


def test_globex_matching_an_unlinked_customer_only_by_name_waits_for_a_person(qbo: Qbo) -> None:
    qbo.seed(Customer=[{"DisplayName": "Globex Corporation", "BillAddr": {"City": "Ogdenville"}}])
    [existing] = qbo.state()["Customer"]
    wanted = globex(2, SHELBYVILLE, "ap@globex-shelbyville.example")
    [outcome] = resolve(qbo, [wanted]).values()
    assert isinstance(outcome, ConnectorError)
    assert outcome.error_class is ErrorClass.INVALID_DATA and outcome.code == "CUSTOMER_AMBIGUOUS"
    assert f"{existing['Id']} 'Globex Corporation'" in outcome.message
    command = f"billsync customers link quickbooks {wanted.account_id} {existing['Id']} --note"
    assert command in outcome.message
    assert names(qbo) == ["Globex Corporation"]


def test_an_account_renamed_initech_is_not_billed_on_an_unrelated_initech(qbo: Qbo) -> None:
    qbo.seed(
        Customer=[
            {
                "DisplayName": "Initech",
                "PrimaryEmailAddr": {"Address": "billing@initech-holdings.example"},
                "BillAddr": {"City": "Austin", "PostalCode": "78701"},
            }
        ]
    )
    renamed = customer(3, name="Initech", billing_address=SPRINGFIELD)
    [outcome] = resolve(qbo, [renamed]).values()
    assert isinstance(outcome, ConnectorError) and outcome.code == "CUSTOMER_AMBIGUOUS"
    assert "only the name agrees" in outcome.message
    assert f"billsync customers link quickbooks {renamed.account_id} " in outcome.message
    assert names(qbo) == ["Initech"]


def test_two_accounts_sharing_an_ap_email_get_two_customers(qbo: Qbo) -> None:
    acme = customer(1, name="Acme Ltd", email="ap@shared-services.example")
    beta = customer(2, name="Beta LLC", email="ap@shared-services.example")
    [a] = resolve(qbo, [acme]).values()
    assert isinstance(a, Resolved)
    [b] = resolve(qbo, [beta], {acme.account_id: str(a.customer.external_id)}).values()
    assert isinstance(b, Resolved) and b.method == "created"
    assert b.customer.external_id != a.customer.external_id
    assert names(qbo) == ["Acme Ltd", "Beta LLC"]


def test_a_full_match_linked_to_another_account_waits_for_a_person(qbo: Qbo) -> None:
    """Same name and email as another account's customer: the same company twice in
    Salesforce, or not — a person links it on purpose or tells them apart."""
    first = globex(1, SPRINGFIELD, "ap@globex.example")
    [made] = resolve(qbo, [first]).values()
    assert isinstance(made, Resolved)
    cid = str(made.customer.external_id)
    twin = globex(2, SHELBYVILLE, "ap@globex.example")
    [outcome] = resolve(qbo, [twin], {first.account_id: cid}).values()
    assert isinstance(outcome, ConnectorError) and outcome.code == "CUSTOMER_AMBIGUOUS"
    assert f"linked to account {first.account_id}" in outcome.message
    assert names(qbo) == ["Globex Corporation"]


def test_adoption_records_the_fields_that_agreed(qbo: Qbo) -> None:
    qbo.seed(
        Customer=[
            {
                "DisplayName": "Globex Corporation",
                "PrimaryEmailAddr": {"Address": "AP@Globex.example"},
                "BillAddr": {"City": "Springfield", "PostalCode": "62701"},
            }
        ]
    )
    [outcome] = resolve(qbo, [globex(1, SPRINGFIELD, "ap@globex.example")]).values()
    assert isinstance(outcome, Resolved) and outcome.method == "matched"
    assert outcome.evidence == {
        "name": "Globex Corporation",
        "email": "AP@Globex.example",
        "postal_code": "62701",
    }
