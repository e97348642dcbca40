"""Contract: customers of many accounts at once (`StripeTarget.ensure_customers`, the
engine's batch hook) against the sandbox, whose search lags writes by 5 s.

Call budgets from the sandbox's call counter; no duplicate customer through crashes
between create and link, renames within the search lag, or deletions."""

from __future__ import annotations

from datetime import timedelta

from billsync.connectors.stripe import StripeTarget
from billsync.connectors.stripe.customer_lookup import account_query
from billsync.core.canonical import Customer
from billsync.core.protocols import ConnectorError
from tests.connectors.stripe.support import ConnectorEnv, customer

HOURS_3 = 3 * 3600


def accounts(count: int, prefix: str = "001B") -> list[Customer]:
    # Every other one without an email: the batch path does not depend on it.
    return [
        customer(
            f"{prefix}{i:03}",
            email=f"ap{i}@{prefix.lower()}.example" if i % 2 else None,
            name=f"Co {prefix} {i}",
        )
        for i in range(count)
    ]


def ids(outcomes: dict[str, Customer | ConnectorError]) -> dict[str, str]:
    found: dict[str, str] = {}
    for account, outcome in outcomes.items():
        assert isinstance(outcome, Customer) and outcome.external_id, outcome
        found[account] = outcome.external_id
    return found


def ours(env: ConnectorEnv) -> dict[str, list[str]]:
    by_account: dict[str, list[str]] = {}
    for c in env.state()["customers"]:
        account = (c.get("metadata") or {}).get("billsync_account_id")
        if account:
            by_account.setdefault(account, []).append(c["id"])
    return by_account


def test_new_accounts_cost_two_searches_per_ten_and_one_create_each(env: ConnectorEnv) -> None:
    wanted = accounts(25)
    outcomes = dict(env.connect().target.ensure_customers(wanted))
    assert env.calls() == {
        # 25 accounts, ten clauses a query: 3 by account id, then 4 by name or email
        # (13 with an email: 38 clauses), for a customer that existed before billsync.
        "GET /v1/customers/search": 7,
        "GET /v1/customers": 1,  # the recent list, strongly consistent
        "POST /v1/customers": 25,
    }
    made = ids(outcomes)
    assert set(made) == {c.account_id for c in wanted} and len(set(made.values())) == 25
    assert {a: v for a, v in ours(env).items()} == {a: [i] for a, i in made.items()}


def test_old_customers_are_found_by_search_recent_ones_by_the_list(env: ConnectorEnv) -> None:
    old = accounts(12, "001OLD")
    first = ids(dict(env.connect().target.ensure_customers(old)))
    env.advance(HOURS_3)  # past the recent window: only search can find these now
    recent = accounts(3, "001NEW")
    made = ids(dict(env.connect().target.ensure_customers(recent)))  # not searchable yet
    env.clear_calls()
    again = env.connect().target.ensure_customers([*old, *recent, customer("001NONE")])
    found = ids(dict(again))
    assert {a: found[a] for a in first} == first and {a: found[a] for a in made} == made
    assert env.calls() == {
        "GET /v1/customers/search": 3,  # 16 accounts by id, then 001NONE by name or email
        "GET /v1/customers": 1,
        "POST /v1/customers": 1,  # 001NONE only
    }


def test_crash_between_create_and_link_does_not_duplicate(env: ConnectorEnv) -> None:
    """The engine links a customer after ensure_customers returns; a process dying in
    between leaves an unlinked customer search cannot see yet (lag 5 s)."""
    wanted = [customer("001CRASH", email=None)]
    first = ids(dict(env.connect().target.ensure_customers(wanted)))
    env.clear_calls()
    # A new process, inside the search lag: the recent list sees it.
    assert ids(dict(env.connect().target.ensure_customers(wanted))) == first
    assert env.calls() == {"GET /v1/customers/search": 1, "GET /v1/customers": 1}
    # Even with a recent window too short to list it, the account's create key replays.
    env.advance(2)
    api = env.connect().api
    blind = StripeTarget(api, now=env.now, recent_window=timedelta(seconds=1))
    env.clear_calls()
    assert ids(dict(blind.ensure_customers(wanted))) == first
    assert env.calls()["POST /v1/customers"] == 1  # replayed: Idempotent-Replayed
    assert ours(env) == {"001CRASH": list(first.values())}


def test_renamed_within_the_search_lag_keeps_one_customer(env: ConnectorEnv) -> None:
    """Unlike the one-account path (tests of `ensure_customer`), the batch path sees the
    first customer in the recent list, so the account's key is never asked again."""
    first = ids(dict(env.connect().target.ensure_customers([customer("001LAG", email=None)])))
    renamed = customer("001LAG", email=None, name="Other name")
    assert ids(dict(env.connect().target.ensure_customers([renamed]))) == first
    assert ours(env) == {"001LAG": list(first.values())}


def test_a_customer_deleted_since_it_was_listed_is_not_reused(env: ConnectorEnv) -> None:
    target = env.connect().target
    [gone] = ids(dict(target.ensure_customers([customer()]))).values()
    env.admin("POST", f"stripe/customers/{gone}/delete")
    # The operator unlinks it (billsync customers unlink): the same process asks again.
    [fresh] = ids(dict(target.ensure_customers([customer()]))).values()
    assert fresh != gone
    assert ours(env)["001ACME"] == [fresh]  # the deleted one is gone from the listing


def test_linked_customers_cost_nothing_and_quotes_are_escaped(env: ConnectorEnv) -> None:
    linked = customer("001LINKED").model_copy(update={"external_id": "cus_linked"})
    assert env.connect().target.ensure_customers([linked]) == {"001LINKED": linked}
    assert env.calls() == {}
    assert account_query(["a'b", "c\\d"]) == (
        "metadata['billsync_account_id']:'a\\'b' OR metadata['billsync_account_id']:'c\\\\d'"
    )
    odd = ids(dict(env.connect().target.ensure_customers([customer("001O'Hara", email=None)])))
    env.advance(6)
    assert ids(dict(env.connect().target.ensure_customers([customer("001O'Hara")]))) == odd
