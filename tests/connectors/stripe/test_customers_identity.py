"""Issue 16, customer identity, against the Stripe sandbox (search lags writes by 5 s):
a customer that existed before billsync is adopted under the identity rule instead of
duplicated; a name-only match waits for a person; a shared AP email never decides."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import requests

from billsync.core.customer_identity import Resolved
from billsync.core.protocols import ConnectorError, ErrorClass
from tests.connectors.stripe.support import ConnectorEnv, customer

HOURS_3 = 3 * 3600


def by_hand(env: ConnectorEnv, **data: Any) -> dict[str, Any]:
    """A customer made in the Dashboard: no billsync metadata."""
    response = requests.post(
        f"{env.info['stripe_url']}/v1/customers",
        data=data,
        headers={"Authorization": f"Bearer {env.info['stripe_api_key']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def nobody(_ids: Collection[str]) -> dict[str, list[str]]:
    return {}


def resolve(env: ConnectorEnv, wanted: Any, owners: Any = nobody) -> dict[str, Any]:
    return dict(env.connect().target.resolve_customers(wanted, owners))


def test_a_pre_existing_customer_with_the_same_name_and_email_is_adopted(
    env: ConnectorEnv,
) -> None:
    old = by_hand(env, name="Acme GmbH", email="ap@acme.example")
    env.advance(HOURS_3)  # long searchable, outside the recent list
    env.clear_calls()
    [outcome] = resolve(env, [customer()]).values()
    assert isinstance(outcome, Resolved)
    assert outcome.customer.external_id == old["id"]
    assert outcome.method == "matched"
    assert outcome.evidence == {"name": "Acme GmbH", "email": "ap@acme.example"}
    assert [c["id"] for c in env.state()["customers"]] == [old["id"]]  # no duplicate
    assert "POST /v1/customers" not in env.calls()


def test_a_customer_made_by_hand_moments_ago_is_seen_by_the_recent_list(env: ConnectorEnv) -> None:
    """Not searchable yet (lag 5 s): the strongly consistent list still sees it."""
    fresh = by_hand(env, name="Acme GmbH", email="ap@acme.example")
    [outcome] = resolve(env, [customer()]).values()
    assert isinstance(outcome, Resolved) and outcome.customer.external_id == fresh["id"]
    assert len(env.state()["customers"]) == 1


def test_a_name_only_match_waits_for_a_person(env: ConnectorEnv) -> None:
    other = by_hand(env, name="Acme GmbH", email="billing@acme-holding.example")
    env.advance(HOURS_3)
    [outcome] = resolve(env, [customer()]).values()
    assert isinstance(outcome, ConnectorError)
    assert outcome.error_class is ErrorClass.INVALID_DATA and outcome.code == "CUSTOMER_AMBIGUOUS"
    assert f"{other['id']} 'Acme GmbH'" in outcome.message
    assert f"billsync customers link stripe 001ACME {other['id']} --note" in outcome.message
    assert len(env.state()["customers"]) == 1


def test_a_shared_ap_email_alone_is_not_adopted(env: ConnectorEnv) -> None:
    other = by_hand(env, name="Beta LLC", email="ap@acme.example")
    env.advance(HOURS_3)
    [outcome] = resolve(env, [customer()]).values()
    assert isinstance(outcome, Resolved) and outcome.method == "created"
    assert outcome.customer.external_id != other["id"]
    assert len(env.state()["customers"]) == 2


def test_a_match_linked_to_another_account_is_not_adopted(env: ConnectorEnv) -> None:
    old = by_hand(env, name="Acme GmbH", email="ap@acme.example")
    env.advance(HOURS_3)

    def linked_to_other(ids: Collection[str]) -> dict[str, list[str]]:
        return {old["id"]: ["001OTHER"]} if old["id"] in ids else {}

    [outcome] = resolve(env, [customer()], linked_to_other).values()
    assert isinstance(outcome, ConnectorError) and outcome.code == "CUSTOMER_AMBIGUOUS"
    assert "linked to account 001OTHER" in outcome.message


def test_two_accounts_matching_one_customer_in_one_batch_adopt_it_once(env: ConnectorEnv) -> None:
    old = by_hand(env, name="Acme GmbH", email="ap@acme.example")
    env.advance(HOURS_3)
    found = resolve(env, [customer("001A"), customer("001B")])
    assert isinstance(found["001A"], Resolved) and found["001A"].customer.external_id == old["id"]
    assert isinstance(found["001B"], ConnectorError)
    assert "linked to account 001A" in found["001B"].message


def test_billsyncs_own_customer_is_found_by_its_account_id(env: ConnectorEnv) -> None:
    [made] = resolve(env, [customer(name="Acme GmbH")]).values()
    assert isinstance(made, Resolved) and made.method == "created"
    env.advance(HOURS_3)
    [again] = resolve(env, [customer(name="Acme Renamed GmbH", email=None)]).values()
    assert isinstance(again, Resolved) and again.customer.external_id == made.customer.external_id
    assert again.evidence == {"account_id": "001ACME"}
