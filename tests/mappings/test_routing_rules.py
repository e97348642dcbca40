"""Routing: ordered rules (routing field, currency, country, any deal value), then the
routing values, then sync.default_target; the first matching rule wins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from billsync.core.canonical import Account, Address
from billsync.core.plugins import installed_specs
from billsync.mappings.loader import LoadedMapping, MappingError, load_mappings
from billsync.mappings.plan import Planned, Rejected, plan_invoice
from billsync.mappings.rejections import Rejections
from billsync.mappings.targets import MappingTargets
from tests.mappings.conftest import FakeCatalog, make_deal, make_planner, qbo_catalog

RULES = """\
routing:
  rules:
    - {to: qbo_uk, when: {country: [GB, UK], currency: [GBP]}}
    - {to: stripe_eu, when: {currency: [EUR]}}
    - {to: qbo_uk, when: {hint: [QuickBooks UK]}}
    - {to: stripe_eu, when: {path: account.number, in: [EU-1, EU-2]}}
  values:
    quickbooks: [QuickBooks, QBO]
"""


def account(country: str | None, number: str = "AC-1") -> Account:
    address = Address(line1="1 High St", city="London", country=country) if country else None
    return Account(id="001000000000001AAA", name="Acme", number=number, billing_address=address)


@pytest.fixture
def routed(tmp_path: Path) -> LoadedMapping:
    path = tmp_path / "routing.yaml"
    path.write_text(RULES)
    specs = installed_specs()[0]
    connections = {**{kind: kind for kind in specs}, "qbo_uk": "quickbooks", "stripe_eu": "stripe"}
    return load_mappings([path], targets=MappingTargets(specs, connections))


def catalog(name: str) -> FakeCatalog:
    found = qbo_catalog()
    found.target, found.currencies = name, {"USD", "GBP", "EUR"}
    return found


CASES: list[tuple[str, dict[str, Any], str | None]] = [
    # (case, deal overrides, connection; None: rejected)
    ("country and currency", {"account": account("gb"), "currency": "GBP"}, "qbo_uk"),
    ("all conditions must hold", {"account": account("US"), "currency": "GBP"}, "quickbooks"),
    ("currency", {"currency": "EUR", "target_hint": "QuickBooks UK"}, "stripe_eu"),
    ("routing field, any case", {"target_hint": " quickbooks uk "}, "qbo_uk"),
    ("any deal value", {"account": account(None, number="EU-2")}, "stripe_eu"),
    ("no rule: routing values", {"target_hint": "QBO"}, "quickbooks"),
    ("no rule, no value: default", {"target_hint": None}, "quickbooks"),
    ("no rule, unknown value", {"target_hint": "Xero"}, None),
    ("a country the deal lacks never matches", {"account": account(None), "currency": "GBP"},
     "quickbooks"),
]  # fmt: skip


def route(mapping: LoadedMapping, **overrides: Any) -> str | None:
    catalogs = {name: catalog(name) for name in ("quickbooks", "qbo_uk", "stripe_eu")}
    planner = make_planner(mapping, catalogs=catalogs, default_target="quickbooks")
    deal = make_deal(**{"target_hint": "QuickBooks", **overrides})
    return planner.route(deal, Rejections(deal.id))


@pytest.mark.parametrize(("case", "overrides", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rules_then_values_then_default(
    routed: LoadedMapping, case: str, overrides: dict[str, Any], expected: str | None
) -> None:
    assert route(routed, **overrides) == expected


def test_the_first_matching_rule_wins(routed: LoadedMapping) -> None:
    # Rules 1 and 4 both match.
    assert route(routed, account=account("UK", number="EU-1"), currency="GBP") == "qbo_uk"


def test_a_routed_deal_is_planned_for_its_connection(routed: LoadedMapping) -> None:
    catalogs = {name: catalog(name) for name in ("quickbooks", "qbo_uk")}
    planner = make_planner(routed, catalogs=catalogs)
    result = plan_invoice(make_deal(account=account("GB"), currency="GBP"), planner)
    assert isinstance(result, Planned), result
    assert result.draft.target == "qbo_uk"
    assert result.draft.idempotency_key.startswith("billsync:qbo_uk:")


def test_a_rule_to_a_connection_not_enabled_names_the_rule(routed: LoadedMapping) -> None:
    planner = make_planner(routed, catalogs={"quickbooks": catalog("quickbooks")})
    result = plan_invoice(make_deal(currency="EUR"), planner)
    assert isinstance(result, Rejected)
    [problem] = result.rejections
    assert problem.field == "routing.rules[1]"
    assert "routes to stripe_eu, which is not enabled" in problem.reason
    assert "enable stripe_eu" in problem.fix


BAD_RULES = [
    ("{to: quickbooks, when: {}}", "give at least one condition"),
    ("{to: quickbooks, when: {path: account.number}}", "path and in go together"),
    ("{to: quickbooks, when: {path: account.nmber, in: [x]}}", "unknown field path"),
    ("{to: quickbooks, when: {currency: [eur]}}", "should match pattern"),
    ("{to: quickbooks, when: {colour: [red]}}", "unknown key"),
]


@pytest.mark.parametrize(("rule", "reason"), BAD_RULES)
def test_bad_rules_are_refused_at_load(tmp_path: Path, rule: str, reason: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"routing:\n  rules:\n    - {rule}\n")
    with pytest.raises(MappingError) as exc:
        load_mappings([path])
    assert reason in str(exc.value)
    assert str(exc.value).startswith(f"{path}:3: routing.rules.0")
