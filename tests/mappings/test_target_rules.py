"""The QuickBooks and Stripe mapping rules (their `TargetMapping`), one table each."""

from __future__ import annotations

from typing import Any

import pytest

from billsync.connectors.quickbooks import mapping as qbo
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.connectors.stripe import mapping as stripe
from billsync.core.target_mapping import GENERIC, LineTax, Term


def no_value(spec: Any) -> Any:
    return None


def lookup_key(spec: Any) -> Any:
    return "PLAT-USD" if spec is not None else None


PRODUCT_CASES: list[tuple[str, Any, Any, str, Any, tuple[tuple[str, str], ...]]] = [
    # (case, rules, section, code, value_of, candidates)
    ("qbo default: sku then name", qbo.MAPPING, qbo.QuickBooksProducts(), "PLAT", no_value,
     (("sku", "PLAT"), ("name", "PLAT"))),
    ("qbo mapped code", qbo.MAPPING, qbo.QuickBooksProducts(map={"PLAT": "Platform"}), "PLAT",
     no_value, (("sku", "Platform"), ("name", "Platform"))),
    ("qbo name only", qbo.MAPPING, qbo.QuickBooksProducts(resolve_by=["name"]), "PLAT", no_value,
     (("name", "PLAT"),)),
    ("stripe explicit price", stripe.MAPPING, stripe.StripeProducts(map={"PLAT": "price_1"}),
     "PLAT", lookup_key, (("price", "price_1"),)),
    ("stripe lookup key", stripe.MAPPING, stripe.StripeProducts(price_lookup_key="x"), "PLAT",
     lookup_key, (("lookup_key", "PLAT-USD"),)),
    ("stripe lookup key then ad hoc", stripe.MAPPING,
     stripe.StripeProducts(price_lookup_key="x", ad_hoc_prices=True), "PLAT", lookup_key,
     (("lookup_key", "PLAT-USD"), ("product_code", "PLAT"))),
    ("stripe no way", stripe.MAPPING, stripe.StripeProducts(), "PLAT", lookup_key, ()),
    ("generic: by code", GENERIC, None, "PLAT", no_value, (("product_code", "PLAT"),)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "rules", "section", "code", "value_of", "expected"),
    PRODUCT_CASES,
    ids=[c[0] for c in PRODUCT_CASES],
)
def test_product_candidates(
    case: str, rules: Any, section: Any, code: str, value_of: Any, expected: Any
) -> None:
    assert rules.product_candidates(section, code, value_of) == expected


TAX_CASES: list[tuple[str, Any, Any, str, LineTax, bool]] = [
    # (case, rules, section, product code, line tax, automatic)
    ("qbo none", qbo.MAPPING, qbo.QuickBooksTax(), "SEAT", LineTax(), False),
    ("qbo default code", qbo.MAPPING, qbo.QuickBooksTax(default_code="TAX"), "SEAT",
     LineTax(code="TAX"), False),
    ("qbo by product", qbo.MAPPING,
     qbo.QuickBooksTax(default_code="TAX", by_product={"SEAT": "NON"}), "SEAT",
     LineTax(code="NON"), False),
    ("stripe default rates", stripe.MAPPING, stripe.StripeTax(default_rates=["txr_a"]), "SEAT",
     LineTax(rates=("txr_a",)), False),
    ("stripe by product", stripe.MAPPING,
     stripe.StripeTax(default_rates=["txr_a"], by_product={"SEAT": ["txr_a", "txr_b"]}),
     "SEAT", LineTax(rates=("txr_a", "txr_b")), False),
    ("stripe automatic drops defaults", stripe.MAPPING,
     stripe.StripeTax(automatic=True, default_rates=["txr_a"]), "SEAT", LineTax(), True),
    ("generic: no tax", GENERIC, None, "SEAT", LineTax(), False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "rules", "section", "code", "expected", "automatic"),
    TAX_CASES,
    ids=[c[0] for c in TAX_CASES],
)
def test_line_tax(
    case: str, rules: Any, section: Any, code: str, expected: LineTax, automatic: bool
) -> None:
    assert rules.line_tax(section, code) == expected
    assert rules.automatic_tax(section) is automatic


def test_tax_references_name_every_code_with_its_key() -> None:
    qbo_tax = qbo.QuickBooksTax(default_code="TAX", by_product={"SEAT": "NON"})
    assert qbo.MAPPING.tax_references(qbo_tax) == [
        ("default_code", "TAX"),
        ("by_product.SEAT", "NON"),
    ]
    stripe_tax = stripe.StripeTax(default_rates=["a"], by_product={"SEAT": ["b", "c"]})
    assert stripe.MAPPING.tax_references(stripe_tax) == [
        ("default_rates", "a"),
        ("by_product.SEAT", "b"),
        ("by_product.SEAT", "c"),
    ]


TERM_CASES: list[tuple[str, Any, Any, Term | None]] = [
    # (case, rules, entry of "Net 30", meaning)
    ("qbo term must exist", qbo.MAPPING, "Net 30 days", Term("Net 30 days", must_exist=True)),
    ("qbo no entry", qbo.MAPPING, None, None),
    ("stripe send invoice", stripe.MAPPING, stripe.StripeTerms(days_until_due=30),
     Term("Net 30", days_until_due=30)),
    ("stripe charge automatically", stripe.MAPPING,
     stripe.StripeTerms(collection_method="charge_automatically", days_until_due=30),
     Term("Net 30")),
    ("stripe no entry", stripe.MAPPING, None, None),
    ("generic: the name as it is", GENERIC, None, Term("Net 30")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "rules", "entry", "expected"), TERM_CASES, ids=[c[0] for c in TERM_CASES]
)
def test_term_meaning(case: str, rules: Any, entry: Any, expected: Term | None) -> None:
    assert rules.term_meaning(entry, "Net 30") == expected


@pytest.mark.parametrize(
    ("rules", "limit"), [(qbo.MAPPING, 21), (stripe.MAPPING, None), (GENERIC, None)]
)
def test_doc_number_limit(rules: Any, limit: int | None) -> None:
    assert rules.doc_number_max == limit


@pytest.mark.parametrize(("lookup_before_create", "demands"), [(True, False), (False, True)])
def test_quickbooks_without_lookup_needs_a_unique_reference(
    lookup_before_create: bool, demands: bool
) -> None:
    section = QuickBooksSettings(lookup_before_create=lookup_before_create)
    found = qbo.MAPPING.unique_reference(section)
    assert (found is not None) is demands
    assert stripe.MAPPING.unique_reference(object()) is None
