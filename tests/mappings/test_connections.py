"""Target sections keyed by connection or connector kind: a plug-in's own model, a
connection's entry over its kind's, and names nothing configured knows."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from billsync.core.canonical import InvoiceDraft
from billsync.core.catalog import ProductMatch
from billsync.core.plugins import ConnectorParts, ConnectorSpec, installed_specs
from billsync.core.settings import ConnectorSection
from billsync.core.target_mapping import Candidates, TargetMapping, ValueOf
from billsync.mappings.loader import LoadedMapping, MappingError, load_mappings
from billsync.mappings.plan import Planned, Rejected, plan_invoice
from billsync.mappings.targets import MappingTargets
from tests.mappings.conftest import FakeCatalog, make_deal, make_line, make_planner, qbo_catalog


class LedgerlyProducts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account_codes: dict[str, str] = {}


def ledgerly_candidates(products: LedgerlyProducts, code: str, value_of: ValueOf) -> Candidates:
    return (("account_code", products.account_codes.get(code, code)),)


LEDGERLY = ConnectorSpec(
    name="ledgerly",
    label="Ledgerly",
    settings=ConnectorSection,
    build=lambda section, context: ConnectorParts(),
    mapping=TargetMapping(products=LedgerlyProducts, product_candidates=ledgerly_candidates),
)


def targets(**connections: str) -> MappingTargets:
    specs = {**installed_specs()[0], "ledgerly": LEDGERLY}
    return MappingTargets(specs, {**{kind: kind for kind in specs}, **connections})


def load(tmp_path: Path, text: str, found: MappingTargets) -> LoadedMapping:
    path = tmp_path / "custom.yaml"
    path.write_text(text)
    return load_mappings([path], targets=found)


def draft(result: Planned | Rejected) -> InvoiceDraft:
    assert isinstance(result, Planned), result
    return result.draft


def test_a_plug_in_kind_gets_its_products_section_validated_by_its_model(tmp_path: Path) -> None:
    found = targets()
    loaded = load(
        tmp_path, "products:\n  ledgerly:\n    account_codes: {PLAT-SUB: '4000'}\n", found
    )
    catalog = FakeCatalog("ledgerly", products={("account_code", "4000"): ProductMatch("L1", "x")})
    planner = make_planner(loaded, catalogs={"ledgerly": catalog}, default_target="ledgerly")
    assert draft(plan_invoice(make_deal(target_hint=None), planner)).lines[0].item_ref == "L1"
    with pytest.raises(MappingError) as exc:
        load(tmp_path, "products:\n  ledgerly:\n    account_code: {}\n", found)
    [problem] = [str(p) for p in exc.value.problems]
    assert problem == f"{tmp_path / 'custom.yaml'}:3: products.ledgerly.account_code: unknown key"


def test_a_name_nothing_knows_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as exc:
        load(tmp_path, "products:\n  xero:\n    map: {}\n", targets())
    [problem] = [str(p) for p in exc.value.problems]
    assert "products.xero: unknown key: 'xero' is neither a configured connection" in problem


def test_a_kind_without_such_a_section_says_so(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as exc:
        load(tmp_path, "tax:\n  ledgerly: {}\n", targets())
    assert "tax.ledgerly: unknown key: connector 'ledgerly' takes no entry here" in str(exc.value)


def test_a_connection_entry_overrides_its_kinds_entry(tmp_path: Path) -> None:
    found = targets(qbo_uk="quickbooks")
    loaded = load(
        tmp_path,
        "products:\n  qbo_uk:\n    resolve_by: [name]\n    map: {PLAT-SUB: Platform UK}\n"
        "tax:\n  quickbooks:\n    default_code: TAX\n"
        "currencies:\n  qbo_uk: [GBP]\n"
        "terms:\n  values:\n    Net 30:\n      qbo_uk: Net 30 UK\n",
        found,
    )
    uk = qbo_catalog()
    uk.products[("name", "Platform UK")] = ProductMatch("UK1", "Platform UK")
    uk.currencies, uk.terms = {"GBP"}, {"Net 30 UK"}
    planner = make_planner(
        loaded, catalogs={"quickbooks": qbo_catalog(), "qbo_uk": uk}, default_target="qbo_uk"
    )
    made = draft(plan_invoice(make_deal(target_hint=None, currency="GBP"), planner))
    assert made.target == "qbo_uk" and made.lines[0].item_ref == "UK1"
    assert made.lines[0].tax_code == "TAX"  # no tax.qbo_uk: the kind's entry
    assert made.terms == "Net 30 UK"
    assert uk.queries[-1].candidates == (("name", "Platform UK"),)
    # The plain connection keeps the kind's entries.
    us = draft(plan_invoice(make_deal(), planner))
    assert us.target == "quickbooks" and us.lines[0].item_ref == "11" and us.terms == "Net 30"
    usd = plan_invoice(make_deal(target_hint=None), planner)
    assert isinstance(usd, Rejected)
    assert "not a currency billed through QuickBooks (qbo_uk)" in usd.rejections[0].reason


def test_messages_name_the_connection_and_its_label(tmp_path: Path) -> None:
    loaded = load(tmp_path, "routing:\n  values:\n    qbo_uk: [UK]\n", targets(qbo_uk="quickbooks"))
    planner = make_planner(loaded, catalogs={"qbo_uk": qbo_catalog()})
    deal = make_deal((make_line(1, product_code="SKU-9"),), target_hint="UK")
    result = plan_invoice(deal, planner)
    assert isinstance(result, Rejected)
    assert "has no QuickBooks (qbo_uk) match" in result.rejections[0].reason
    labelled = make_planner(loaded, catalogs={"qbo_uk": qbo_catalog()}, labels={"qbo_uk": "UK"})
    assert "has no UK match" in str(plan_invoice(deal, labelled))


def test_routing_names_must_be_connections(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as exc:
        load(
            tmp_path, "routing:\n  rules:\n    - {to: qbo_eu, when: {currency: [EUR]}}\n", targets()
        )
    assert "routing.rules.0.to: 'qbo_eu' is neither a configured connection" in str(exc.value)
