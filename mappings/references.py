"""Check that what a mapping names exists in the targets: items, prices, terms, taxes.

`billsync mappings check --config F` runs this against the live catalogues, so a typo
in a product map or a term the target does not have is found before a run rejects
every deal that uses it. What a target's entries name is its connector's to say
(`billsync.core.target_mapping.TargetMapping`); this module only asks the catalogues.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from billsync.core.catalog import ProductQuery, TargetCatalog
from billsync.mappings.model import MappingSpec


@dataclass(frozen=True)
class ReferenceProblem:
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


def check_references(
    spec: MappingSpec, catalogs: Mapping[str, TargetCatalog], home_currency: str = "USD"
) -> list[ReferenceProblem]:
    """Every problem, target connection by target connection (products, terms, tax)."""
    problems: list[ReferenceProblem] = []
    for target, catalog in catalogs.items():
        problems += _products(spec, target, catalog, home_currency)
        problems += _terms(spec, target, catalog)
        problems += _tax(spec, target, catalog)
    return problems


def _products(
    spec: MappingSpec, target: str, catalog: TargetCatalog, home_currency: str
) -> list[ReferenceProblem]:
    targets = spec.targets
    rules = targets.mapping(target)
    key, products = targets.section(spec.products, target, "products")
    if rules.product_map is None or products is None:
        return []
    what = f"{targets.label(target)} {rules.product_noun}"
    problems = []
    for code in rules.product_map(products):
        # No deal here: a value spec (a look-up key template) resolves to nothing, so
        # only the explicit entry is checked.
        candidates = rules.product_candidates(products, code, lambda spec: None)
        query = ProductQuery(code, home_currency, candidates)
        found = catalog.resolve_product(query)
        where = f"products.{key}.map.{code}"
        if found is None:
            problems.append(ReferenceProblem(where, f"no {what} matches {query.describe()}"))
        elif not found.active:
            problems.append(ReferenceProblem(where, f"{what} '{found.label}' is inactive"))
    return problems


def _terms(spec: MappingSpec, target: str, catalog: TargetCatalog) -> list[ReferenceProblem]:
    targets = spec.targets
    rules = targets.mapping(target)
    problems = []
    for name, entries in spec.terms.values.items():
        key, entry = targets.entry(entries, target)
        meaning = rules.term_meaning(entry, name) if entry is not None else None
        if meaning is None or not meaning.must_exist or meaning.name is None:
            continue
        if not catalog.term_exists(meaning.name):
            reason = f"{targets.label(target)} has no term '{meaning.name}'"
            problems.append(ReferenceProblem(f"terms.values.{name}.{key}", reason))
    return problems


def _tax(spec: MappingSpec, target: str, catalog: TargetCatalog) -> list[ReferenceProblem]:
    targets = spec.targets
    rules = targets.mapping(target)
    key, tax = targets.section(spec.tax, target, "tax")
    if tax is None:
        return []
    label = targets.label(target)
    return [
        ReferenceProblem(f"tax.{key}.{where}", f"{label} has no {rules.tax_noun} '{code}'")
        for where, code in rules.tax_references(tax)
        if not catalog.tax_code_exists(code)
    ]
